// A peer that is a child process speaking LSP-framed JSON-RPC on its stdin and stdout: its stderr
// goes to the logger line by line (and the last lines are kept for error messages), it is killed
// on dispose, and its exit rejects the calls still waiting.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { StreamMessageReader, StreamMessageWriter } from "vscode-jsonrpc/node";
import type { Logger } from "./logger.js";
import { Peer } from "./peer.js";

export interface ChildOptions {
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  logger: Logger;
  clientName?: string;
}

export class ChildPeer {
  readonly peer: Peer;
  readonly process: ChildProcess;
  private readonly stderrTail: string[] = [];
  private exited: Promise<void>;

  constructor(options: ChildOptions) {
    const label = `${options.command} ${options.args.join(" ")}`;
    const child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.process = child;
    createInterface({ input: child.stderr! }).on("line", (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > 5) this.stderrTail.shift();
      options.logger.debug(line);
    });
    this.peer = new Peer(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!), {
      logger: options.logger,
      clientName: options.clientName,
      closeReason: () => {
        const tail = this.stderrTail.join("\n");
        return tail ? `last stderr lines:\n${tail}` : "";
      },
      // Its stdout ended: the exit status (below) tells more, unless the process lingers.
      onConnectionClose: () => {
        const timer = setTimeout(() => this.peer.markClosed(`\`${label}\` closed its stdout`), 1000);
        void this.exited.then(() => clearTimeout(timer));
      },
    });
    // A write to a dead child fails with EPIPE; the exit below already tells why.
    child.stdin!.on("error", () => {});
    this.exited = new Promise((resolve) => {
      child.on("error", (e) => {
        this.peer.markClosed(`could not start \`${label}\`: ${e.message}`);
        resolve();
      });
      child.on("exit", (code, signal) => {
        const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
        this.peer.markClosed(`\`${label}\` ${how}`);
        resolve();
      });
    });
  }

  /** Waits until the process is running (or failed to start). */
  async started(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (this.process.pid !== undefined) return resolve();
      this.process.once("spawn", () => resolve());
      this.process.once("error", () => resolve());
    });
  }

  /** Ends politely (shutdown, exit) when it can, then kills the process if it is still alive. */
  async dispose(graceMs = 2000): Promise<void> {
    try {
      if (!this.peer.isClosed) await withTimeout(this.peer.shutdown(), graceMs);
    } catch {
      // A server that cannot shut down cleanly is killed below.
    }
    this.peer.connection.dispose();
    if (this.process.exitCode === null && this.process.signalCode === null) {
      const timer = setTimeout(() => this.process.kill("SIGKILL"), graceMs);
      await Promise.race([this.exited, new Promise((r) => setTimeout(r, graceMs / 2))]);
      if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill("SIGTERM");
      await this.exited;
      clearTimeout(timer);
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    promise.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e) => (clearTimeout(timer), reject(e)),
    );
  });
}
