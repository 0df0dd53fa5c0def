// The peer's words reach the host's logger: `$/logMessage` at its level, `$/progress` as info,
// stderr lines as debug.
import assert from "node:assert/strict";
import { join } from "node:path";
import { it } from "node:test";
import { AgentClient, BridgeEnvironment, type Logger } from "../src/index.js";
import { python, repoRoot, stepwireBin } from "./support.js";

function capture(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (message: string) => lines.push(`${level}: ${message}`);
  return { lines, logger: { error: at("error"), warn: at("warn"), info: at("info"), debug: at("debug") } };
}

it("forwards a bridge's $/logMessage, $/progress and stderr to the logger", async () => {
  const { logger, lines } = capture();
  const env = await BridgeEnvironment.spawn(python(), [join(repoRoot, "hosts", "typescript", "test", "fixtures", "chatty_bridge.py")], { logger });
  try {
    await env.reset({ task: "wait" });
    // stderr arrives on its own pipe: give it a moment.
    for (let i = 0; i < 50 && !lines.some((l) => l.includes("chatty: resetting")); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(lines.includes("warn: the room is ready"), lines.join("\n"));
    assert.ok(lines.some((l) => /^info: progress \S+: Warming up$/.test(l)), lines.join("\n"));
    assert.ok(lines.includes("debug: chatty: resetting"), lines.join("\n"));
  } finally {
    await env.dispose();
  }
});

it("forwards stepwire's stderr (its tracing logs) to the logger", async () => {
  const { logger, lines } = capture();
  const agent = await AgentClient.spawn({
    policy: "rules",
    bin: stepwireBin(),
    cwd: repoRoot,
    env: { ...process.env, STEPWIRE_LOG: "debug" },
    logger,
  });
  await agent.dispose();
  assert.ok(lines.length > 0 && lines.every((l) => l.startsWith("debug: ")), lines.join("\n"));
});
