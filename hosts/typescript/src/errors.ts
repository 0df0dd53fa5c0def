import { ResponseError } from "vscode-jsonrpc";
import { ErrorCode } from "./generated/protocol.js";

const codeNames = new Map<number, string>(Object.entries(ErrorCode).map(([name, code]) => [code, name]));

/** An error answer from the peer: the JSON-RPC `code`, `message` and `data`, and the method asked. */
export class StepwireError extends Error {
  readonly code: number;
  readonly data: unknown;
  readonly method: string;

  constructor(method: string, code: number, message: string, data?: unknown) {
    const name = codeNames.get(code) ?? "error";
    super(`${method}: ${message} (${name} ${code})`);
    this.name = "StepwireError";
    this.method = method;
    this.code = code;
    this.data = data;
  }

  /** The peer's answer turned into a StepwireError; anything else unchanged. */
  static from(method: string, error: unknown): unknown {
    if (error instanceof ResponseError) return new StepwireError(method, error.code, error.message, error.data);
    return error;
  }
}

/** The peer went away (process exited, socket closed) before answering. */
export class ConnectionClosedError extends Error {
  readonly method: string | undefined;

  constructor(reason: string, method?: string) {
    super(method ? `${method} not answered: ${reason}` : reason);
    this.name = "ConnectionClosedError";
    this.method = method;
  }
}
