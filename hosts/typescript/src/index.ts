export { AgentClient, type ConnectAgentOptions, type SpawnAgentOptions } from "./agent.js";
export { BridgeEnvironment, type SpawnBridgeOptions, type TextEnvironment } from "./environment.js";
export { runEpisode, type EpisodeOptions } from "./episode.js";
export { ConnectionClosedError, StepwireError } from "./errors.js";
export { silentLogger, stderrLogger, type Logger } from "./logger.js";
export { Peer } from "./peer.js";
export { JsonlRecordFile, MemoryRecord, type RecordSink } from "./record.js";
export * from "./generated/protocol.js";
export { CancellationTokenSource, type CancellationToken } from "vscode-jsonrpc";
