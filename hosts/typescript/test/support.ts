// What the tests share: where the checkout and the real stepwire binary are, a listening server
// on a free port, and the recording validator (schemas/record.line.json with Ajv).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";

/** The repository root (tests run from hosts/typescript/dist/test). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");

/** `$STEPWIRE_BIN`, else the checkout's debug build. */
export function stepwireBin(): string {
  const bin = process.env.STEPWIRE_BIN ?? join(repoRoot, "target", "debug", "stepwire");
  if (!existsSync(bin)) throw new Error(`no stepwire binary at ${bin}: build it (cargo build -p stepwire-runtime) or set STEPWIRE_BIN`);
  return bin;
}

/** The project's Python (`$STEPWIRE_PYTHON`, else the checkout's .venv). */
export function python(): string {
  return process.env.STEPWIRE_PYTHON ?? join(repoRoot, ".venv", "bin", "python");
}

export interface Listening {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `stepwire serve --listen 127.0.0.1:0` with a token and reads its port from stderr. */
export async function startListening(policy: string, token: string, extra: string[] = []): Promise<Listening> {
  const child = spawn(stepwireBin(), ["serve", "--listen", "127.0.0.1:0", "--policy", policy, ...extra], {
    cwd: repoRoot,
    env: { ...process.env, STEPWIRE_TOKEN: token },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const lines = createInterface({ input: child.stderr! });
  const url = await new Promise<string>((resolveUrl, reject) => {
    lines.on("line", (line) => {
      const match = /listening on (ws:\/\/\S+)/.exec(line);
      if (match) resolveUrl(match[1]);
    });
    child.once("exit", (code) => reject(new Error(`stepwire serve exited (${code}) before listening`)));
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return {
    url,
    process: child,
    async stop() {
      child.kill("SIGINT");
      await exited;
    },
  };
}

const ajv = new Ajv2020({ strict: false, allErrors: true });
for (const format of ["uint64", "uint32", "int64", "float", "double"]) ajv.addFormat(format, true);
const validateLine = ajv.compile(JSON.parse(readFileSync(join(repoRoot, "schemas", "record.line.json"), "utf8")));

/** Every line of a JSONL recording, each checked against schemas/record.line.json. */
export function readRecording(path: string): Array<Record<string, any>> {
  const lines = readFileSync(path, "utf8").split("\n").filter((l) => l.length > 0);
  return lines.map((text, i) => {
    const line: Record<string, any> = JSON.parse(text);
    if (!validateLine(line)) {
      throw new Error(`${path} line ${i + 1} breaks record.line.json: ${ajv.errorsText(validateLine.errors)}`);
    }
    return line;
  });
}
