/** Where the library's logs go: the server's `$/logMessage` notifications and its stderr lines. */
export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

/** Logs on stderr with a prefix (stdout is left to the host). */
export function stderrLogger(prefix = "stepwire", level: "error" | "warn" | "info" | "debug" = "warn"): Logger {
  const order = ["error", "warn", "info", "debug"];
  const write = (at: string) => (message: string) => {
    if (order.indexOf(at) <= order.indexOf(level)) process.stderr.write(`[${prefix} ${at}] ${message}\n`);
  };
  return { error: write("error"), warn: write("warn"), info: write("info"), debug: write("debug") };
}

/** Drops everything. */
export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };
