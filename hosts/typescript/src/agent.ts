// The agent plane's client: `agent/plan`, `agent/act`, `agent/progress`, `agent/step` on a
// `stepwire serve` spawned over stdio or reached over WebSocket.
import type { CancellationToken } from "vscode-jsonrpc";
import { ChildPeer } from "./child.js";
import type {
  ActParams,
  ActResult,
  AgentCapabilities,
  AgentStepParams,
  AgentStepResult,
  InitializeResult,
  PlanParams,
  PlanResult,
  ProgressUpdateParams,
  ProgressUpdateResult,
} from "./generated/protocol.js";
import { stderrLogger, type Logger } from "./logger.js";
import { Peer } from "./peer.js";
import { openWebSocket, WebSocketMessageReader, WebSocketMessageWriter } from "./websocket.js";

export interface SpawnAgentOptions {
  /** `rules`, `random` or a model directory with a stepwire.toml. */
  policy: string;
  /** The stepwire binary: default `$STEPWIRE_BIN`, else `stepwire` on the PATH. */
  bin?: string;
  /** More `stepwire serve` arguments (e.g. `--max-in-flight 8`). */
  args?: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

export interface ConnectAgentOptions {
  /** The bearer token the listener requires (`STEPWIRE_TOKEN` or `--token-file` on its side). */
  token?: string;
  logger?: Logger;
}

export class AgentClient {
  private constructor(
    readonly peer: Peer,
    readonly info: InitializeResult,
    private readonly close: () => Promise<void>,
    /** The server's process id when this client spawned it. */
    readonly pid?: number,
  ) {}

  /** Spawns `stepwire serve --stdio --policy <policy>` and initializes it. */
  static async spawn(options: SpawnAgentOptions): Promise<AgentClient> {
    const child = new ChildPeer({
      command: options.bin ?? process.env.STEPWIRE_BIN ?? "stepwire",
      args: ["serve", "--stdio", "--policy", options.policy, ...(options.args ?? [])],
      cwd: options.cwd,
      env: options.env,
      logger: options.logger ?? stderrLogger("stepwire"),
    });
    try {
      const info = await child.peer.initialize();
      return new AgentClient(child.peer, info, () => child.dispose(), child.process.pid);
    } catch (error) {
      await child.dispose();
      throw error;
    }
  }

  /** Connects to `stepwire serve --listen ADDR` at `ws://ADDR` and initializes the session. */
  static async connect(url: string, options: ConnectAgentOptions = {}): Promise<AgentClient> {
    const socket = await openWebSocket(url, options.token);
    // Registered before the reader's own listener, so the reason is known when it reports the close.
    let closeCode = "";
    socket.on("close", (code, reason) => (closeCode = ` with code ${code}${reason.length ? `: ${reason}` : ""}`));
    const peer = new Peer(new WebSocketMessageReader(socket), new WebSocketMessageWriter(socket), {
      logger: options.logger ?? stderrLogger("stepwire"),
      closeReason: () => `WebSocket ${url} closed${closeCode}`,
    });
    const close = async () => {
      try {
        if (!peer.isClosed) await peer.shutdown();
      } catch {
        // Closing anyway.
      }
      peer.connection.dispose();
      socket.close();
    };
    try {
      return new AgentClient(peer, await peer.initialize(), close);
    } catch (error) {
      await close();
      throw error;
    }
  }

  /** What the loaded policy serves (roles, constrained decoding). */
  get capabilities(): AgentCapabilities | undefined {
    return this.info.capabilities.agent ?? undefined;
  }

  /** The high-level policy: the next subtask. */
  plan(params: PlanParams, token?: CancellationToken): Promise<PlanResult> {
    return this.peer.request("agent/plan", params, token);
  }

  /** The low-level policy: the next action, and whether the subtask is done. */
  act(params: ActParams, token?: CancellationToken): Promise<ActResult> {
    return this.peer.request("agent/act", params, token);
  }

  /** The local-progress module: the updated summary. */
  progress(params: ProgressUpdateParams, token?: CancellationToken): Promise<ProgressUpdateResult> {
    return this.peer.request("agent/progress", params, token);
  }

  /** One whole STEP-HRL step on the augmented state the host carries. */
  step(params: AgentStepParams, token?: CancellationToken): Promise<AgentStepResult> {
    return this.peer.request("agent/step", params, token);
  }

  /** `shutdown` and `exit`, then the process is killed or the socket closed. */
  dispose(): Promise<void> {
    return this.close();
  }
}
