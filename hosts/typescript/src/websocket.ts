// vscode-jsonrpc's reader and writer over a WebSocket from the `ws` package: one JSON-RPC
// message per text message, as `stepwire serve --listen` speaks it.
import {
  AbstractMessageReader,
  AbstractMessageWriter,
  type DataCallback,
  type Disposable,
  type Message,
  type MessageReader,
  type MessageWriter,
} from "vscode-jsonrpc";
import WebSocket from "ws";

export class WebSocketMessageReader extends AbstractMessageReader implements MessageReader {
  constructor(private readonly socket: WebSocket) {
    super();
    socket.on("close", () => this.fireClose());
    socket.on("error", (e) => this.fireError(e));
  }

  listen(callback: DataCallback): Disposable {
    const onMessage = (data: WebSocket.RawData) => {
      try {
        callback(JSON.parse(data.toString()) as Message);
      } catch (e) {
        this.fireError(e);
      }
    };
    this.socket.on("message", onMessage);
    return { dispose: () => this.socket.off("message", onMessage) };
  }
}

export class WebSocketMessageWriter extends AbstractMessageWriter implements MessageWriter {
  private errors = 0;

  constructor(private readonly socket: WebSocket) {
    super();
    socket.on("close", () => this.fireClose());
  }

  write(message: Message): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.send(JSON.stringify(message), (error) => {
        if (!error) return resolve();
        this.errors += 1;
        this.fireError(error, message, this.errors);
        reject(error);
      });
    });
  }

  end(): void {
    this.socket.close();
  }
}

/** Opens a WebSocket, sending `Authorization: Bearer <token>` when a token is given. */
export function openWebSocket(url: string, token?: string): Promise<WebSocket> {
  const headers = token ? { Authorization: `Bearer ${token}` } : undefined;
  const socket = new WebSocket(url, { headers });
  return new Promise((resolve, reject) => {
    socket.once("open", () => resolve(socket));
    socket.once("unexpected-response", (_req, res) => {
      reject(new Error(`WebSocket ${url} refused: HTTP ${res.statusCode} ${res.statusMessage ?? ""}`.trim()));
      socket.terminate();
    });
    socket.once("error", (e) => reject(new Error(`WebSocket ${url}: ${e.message}`)));
  });
}
