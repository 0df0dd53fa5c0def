// The README's "TypeScript host" example, taken from README.md, type-checked against this package
// and run as written from the checkout's root: the trained policy plays a real ScienceWorld game.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";
import ts from "typescript";
import { readRecording, repoRoot, stepwireBin } from "./support.js";

/** The first ```ts block under the README's "## TypeScript host" heading. */
function readmeExample(): string {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const section = readme.split(/^## /m).find((s) => s.startsWith("TypeScript host\n"));
  assert.ok(section, 'README.md has no "## TypeScript host" section');
  const block = /```ts\n([\s\S]*?)```/.exec(section);
  assert.ok(block, "the section has no ```ts example");
  return block[1];
}

it("the README example stays under 20 lines", () => {
  assert.ok(readmeExample().trimEnd().split("\n").length < 20);
});

it("the README example type-checks and plays ScienceWorld with the trained policy", { timeout: 300_000 }, () => {
  // Inside the package, so `@stepwire/host` resolves to it by self-reference.
  const dir = join(repoRoot, "hosts", "typescript", "dist", "readme");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "example.ts");
  writeFileSync(file, readmeExample());
  const program = ts.createProgram([file], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    skipLibCheck: true,
    types: ["node"],
  });
  const emitted = program.emit();
  const diagnostics = ts.getPreEmitDiagnostics(program).concat(emitted.diagnostics);
  assert.deepEqual(diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n")), []);

  const record = join(repoRoot, "runs", "ts-host.jsonl");
  const run = spawnSync(process.execPath, [join(dir, "example.js")], {
    cwd: repoRoot,
    env: { ...process.env, STEPWIRE_BIN: stepwireBin() },
    encoding: "utf8",
    timeout: 280_000,
  });
  assert.equal(run.status, 0, `exit ${run.status}\n${run.stderr}`);
  const lines = readRecording(record);
  const summary = lines.at(-1)!;
  assert.equal(summary.kind, "episode");
  assert.equal(summary.episode.env, "scienceworld");
  assert.equal(summary.outcome, "won", run.stdout);
  assert.equal(summary.score, 100);
  assert.ok(summary.steps <= 30);
  assert.match(run.stdout, new RegExp(`^won 100 ${summary.steps} steps$`, "m"));
  // Every action printed was played and recorded, in order.
  const played = lines.filter((l) => l.level === "low").map((l) => l.action);
  assert.equal(played.length, summary.steps);
  const printed = run.stdout.split("\n").filter((l) => / -> /.test(l)).map((l) => l.replace(/^\d+ /, "").split(" -> ")[0]);
  assert.deepEqual(printed, played);
});
