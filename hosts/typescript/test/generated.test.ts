// src/generated/protocol.ts is what scripts/generate-types.mjs makes from schemas/ today.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { it } from "node:test";
import { ErrorCode, METHODS, PROTOCOL_VERSION } from "../src/index.js";
import { repoRoot } from "./support.js";

const pkg = join(repoRoot, "hosts", "typescript");

it("the generated types match the schemas (run `npm run generate` when this fails)", () => {
  const run = spawnSync(process.execPath, [join(pkg, "scripts", "generate-types.mjs"), "--check"], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
});

it("carries the protocol's methods, error codes and version", () => {
  assert.equal(PROTOCOL_VERSION, 1);
  assert.ok("agent/step" in METHODS && "env/admissibleActions" in METHODS);
  assert.equal(ErrorCode.RequestCancelled, -32800);
  assert.equal(ErrorCode.InvalidAction, -31001);
});
