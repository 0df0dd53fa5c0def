// The episode loop: an environment the host owns (in-process) and a bridge process, played by the
// real server, with the recording checked against schemas/record.line.json.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  AgentClient,
  BridgeEnvironment,
  CancellationTokenSource,
  ErrorCode,
  MemoryRecord,
  StepwireError,
  runEpisode,
  silentLogger,
  type ResetParams,
  type ResetResult,
  type StepResult,
  type TextEnvironment,
} from "../src/index.js";
import { python, readRecording, repoRoot, stepwireBin } from "./support.js";

/** A game a host would own: find the key, unlock the box, open it. */
class LockboxGame implements TextEnvironment {
  readonly name = "lockbox-ts";
  private held = false;
  private unlocked = false;
  private turns = 0;

  async reset(params: ResetParams): Promise<ResetResult> {
    if (params.task !== "open-box") throw new StepwireError("env/reset", ErrorCode.UnknownTask, `no task ${params.task}`);
    this.held = this.unlocked = false;
    this.turns = 0;
    return { episodeId: "1", taskDescription: "Open the box.", observation: { text: "A locked box. A key on the floor." }, variation: 0, maxScore: 3 };
  }

  async admissibleActions(): Promise<string[]> {
    // The useful action comes first, so the rules actor (first admissible) wins in three steps.
    const useful = !this.held ? "take key" : !this.unlocked ? "unlock box" : "open box";
    return [useful, "look"];
  }

  async step(action: string): Promise<StepResult> {
    this.turns += 1;
    const done = (won: boolean, text: string, reward: number): StepResult => ({
      observation: { text },
      reward,
      score: Number(this.held) + Number(this.unlocked) + Number(won),
      done: won,
      won,
    });
    if (action === "take key" && !this.held) return (this.held = true), done(false, "You take the key.", 1);
    if (action === "unlock box" && this.held && !this.unlocked) return (this.unlocked = true), done(false, "Unlocked.", 1);
    if (action === "open box" && this.unlocked) return done(true, "The box is open. You win.", 1);
    if (action === "look") return done(false, "A box.", 0);
    throw new StepwireError("env/step", ErrorCode.InvalidAction, `cannot ${action}`);
  }
}

describe("episode loop", () => {
  let agent: AgentClient;
  const dir = mkdtempSync(join(tmpdir(), "stepwire-host-"));
  before(async () => {
    agent = await AgentClient.spawn({ policy: "rules", bin: stepwireBin(), cwd: repoRoot, logger: silentLogger });
  });
  after(() => agent.dispose());

  it("plays an environment the host owns and records it as stepwire run does", async () => {
    const path = join(dir, "lockbox.jsonl");
    const seen: string[] = [];
    const summary = await runEpisode(agent, new LockboxGame(), {
      reset: { task: "open-box" },
      maxSteps: 10,
      record: path,
      onStep: ({ action }) => seen.push(action),
    });
    assert.deepEqual(seen, ["take key", "unlock box", "open box"]);
    assert.equal(summary.outcome, "won");
    assert.equal(summary.steps, 3);
    assert.equal(summary.score, 3);
    const lines = readRecording(path);
    assert.deepEqual(lines.at(-1), { kind: "episode", ...summary });
    const low = lines.filter((l) => l.level === "low");
    assert.deepEqual(low.map((l) => [l.step, l.action]), [[0, "take key"], [1, "unlock box"], [2, "open box"]]);
    assert.equal(low[2].done, true);
    assert.equal(low[1].nextState.observation.text, "Unlocked.");
    const high = lines.filter((l) => l.level === "high");
    assert.ok(high.length >= 1 && high.at(-1)!.done === true, "the last plan closes with the episode");
    assert.equal(high.reduce((sum, l) => sum + l.reward, 0), 3, "plans gather the episode's reward");
    assert.ok(lines.every((l) => l.kind === "episode" || l.episode.env === "lockbox-ts"));
  });

  it("plays a bridge process and stops at maxSteps (truncated)", async () => {
    const env = await BridgeEnvironment.spawn(python(), [join(repoRoot, "examples", "python-bridge", "bridge.py")], { logger: silentLogger });
    try {
      const record = new MemoryRecord();
      const summary = await runEpisode(agent, env, { reset: { task: "plant-seed", split: "train", variation: 1, seed: 4 }, maxSteps: 2, record });
      assert.equal(summary.outcome, "truncated");
      assert.equal(summary.steps, 2);
      assert.equal(summary.episode.env, "garden");
      assert.equal(summary.maxScore, 4);
      assert.equal(record.lines.filter((l) => "level" in l && l.level === "low").length, 2);
    } finally {
      await env.dispose();
    }
  });

  it("repairs a free-writing policy's refused action with agent/act over the admissible actions", async () => {
    // The ScienceWorld policy writes ScienceWorld actions; the garden refuses most of them.
    const writer = await AgentClient.spawn({ policy: "models/scienceworld-step-hrl", bin: stepwireBin(), cwd: repoRoot, logger: silentLogger });
    const env = await BridgeEnvironment.spawn(python(), [join(repoRoot, "examples", "python-bridge", "bridge.py")], { logger: silentLogger });
    try {
      assert.equal(writer.capabilities?.constrainedDecoding, false);
      const played: Array<[string, string]> = [];
      const summary = await runEpisode(writer, env, {
        reset: { task: "water-plant", split: "train", variation: 0, seed: 1 },
        maxSteps: 4,
        onStep: ({ decision, action }) => played.push([decision.action, action]),
      });
      assert.equal(summary.steps, 4);
      assert.ok(played.some(([written, action]) => written !== action), `nothing was repaired: ${JSON.stringify(played)}`);
      for (const [, action] of played) assert.match(action, /^(look|inventory|take .+|fill can|water .+)$/);
    } finally {
      await env.dispose();
      await writer.dispose();
    }
  });

  it("throws when cancelled, with the step's request cancelled", async () => {
    const source = new CancellationTokenSource();
    source.cancel();
    await assert.rejects(
      runEpisode(agent, new LockboxGame(), { reset: { task: "open-box" }, token: source.token }),
      (e: unknown) => e instanceof StepwireError && e.code === ErrorCode.RequestCancelled,
    );
  });

  it("reports an environment that fails to reset", async () => {
    await assert.rejects(runEpisode(agent, new LockboxGame(), { reset: { task: "fly" } }), (e: unknown) => e instanceof StepwireError && e.code === ErrorCode.UnknownTask);
  });
});
