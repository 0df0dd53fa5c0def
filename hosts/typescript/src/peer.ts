// One JSON-RPC connection to a stepwire peer (agent server or bridge), over any vscode-jsonrpc
// reader and writer: the lifecycle, typed requests with errors turned into StepwireError, the
// peer's `$/logMessage` forwarded to the logger, and calls pending when it goes away rejected.
import {
  CancellationToken,
  createMessageConnection,
  type MessageConnection,
  type MessageReader,
  type MessageWriter,
} from "vscode-jsonrpc";
import { ConnectionClosedError, StepwireError } from "./errors.js";
import {
  PROTOCOL_VERSION,
  type InitializeParams,
  type InitializeResult,
  type LogMessageParams,
  type ProgressParams,
} from "./generated/protocol.js";
import type { Logger } from "./logger.js";

export interface PeerOptions {
  /** Name sent as `clientInfo.name`. */
  clientName?: string;
  logger: Logger;
  /** Tells what happened when the connection closes (exit code, stderr tail); read lazily. */
  closeReason?: () => string;
  /** Called instead of marking the peer closed when the connection ends (a child process waits for its exit status). */
  onConnectionClose?: () => void;
}

export class Peer {
  readonly connection: MessageConnection;
  private closedReason: string | undefined;
  private readonly closed: Promise<never>;
  private rejectClosed!: (e: Error) => void;
  private shutDown = false;

  constructor(
    reader: MessageReader,
    writer: MessageWriter,
    private readonly options: PeerOptions,
  ) {
    this.closed = new Promise<never>((_, reject) => (this.rejectClosed = reject));
    this.closed.catch(() => {}); // only awaited through race(); never unhandled
    this.connection = createMessageConnection(reader, writer);
    this.connection.onNotification("$/logMessage", (p: LogMessageParams) => {
      const log = options.logger;
      const at = p.level === "trace" ? "debug" : p.level;
      log[at](p.message);
    });
    this.connection.onNotification("$/progress", ({ token, value }: ProgressParams) => {
      const detail = [
        "title" in value ? value.title : value.kind,
        "message" in value ? value.message : undefined,
        "percentage" in value && value.percentage != null ? `${value.percentage}%` : undefined,
      ].filter(Boolean);
      options.logger.info(`progress ${token}: ${detail.join(" ")}`);
    });
    this.connection.onClose(() => (options.onConnectionClose ?? (() => this.markClosed("the connection closed")))());
    this.connection.onError(([error]) => options.logger.debug(`connection error: ${error.message}`));
    this.connection.listen();
  }

  /** Marks the peer gone: every pending and later call rejects with ConnectionClosedError. */
  markClosed(reason: string): void {
    if (this.closedReason !== undefined) return;
    const detail = this.options.closeReason?.();
    this.closedReason = detail ? `${reason}; ${detail}` : reason;
    this.rejectClosed(new ConnectionClosedError(this.closedReason));
  }

  get isClosed(): boolean {
    return this.closedReason !== undefined;
  }

  /** `initialize`, then `initialized`. */
  async initialize(capabilities: InitializeParams["capabilities"] = { logMessages: true, progress: true }): Promise<InitializeResult> {
    const params: InitializeParams = {
      protocolVersion: PROTOCOL_VERSION,
      clientInfo: { name: this.options.clientName ?? "@stepwire/host", version: "0.1.0" },
      capabilities,
    };
    const result = await this.request<InitializeResult>("initialize", params);
    await this.connection.sendNotification("initialized", {});
    return result;
  }

  /** A request by name; a cancelled token sends `$/cancelRequest`. */
  async request<R>(method: string, params: unknown, token?: CancellationToken): Promise<R> {
    if (this.closedReason !== undefined) throw new ConnectionClosedError(this.closedReason, method);
    const answer = this.connection.sendRequest<R>(method, params, token ?? CancellationToken.None);
    // When the close wins the race, the answer is rejected later (on dispose): nobody waits for it.
    answer.catch(() => {});
    try {
      return await Promise.race([answer, this.closed]);
    } catch (error) {
      if (error instanceof ConnectionClosedError) throw new ConnectionClosedError(this.closedReason!, method);
      throw StepwireError.from(method, error);
    }
  }

  /** `shutdown` then `exit`, when the peer is still there; then the connection is disposed. */
  async shutdown(): Promise<void> {
    if (!this.shutDown && !this.isClosed) {
      this.shutDown = true;
      await this.request("shutdown", null);
      await this.connection.sendNotification("exit");
    }
    this.connection.dispose();
  }
}
