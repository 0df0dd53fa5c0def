// The environment plane against a real bridge process (the example garden bridge, Python SDK).
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BridgeEnvironment, ErrorCode, StepwireError, silentLogger } from "../src/index.js";
import { python, repoRoot } from "./support.js";

describe("environment plane (examples/python-bridge)", () => {
  let env: BridgeEnvironment;
  before(async () => {
    env = await BridgeEnvironment.spawn(python(), [join(repoRoot, "examples", "python-bridge", "bridge.py")], { logger: silentLogger });
  });
  after(() => env.dispose());

  it("lists tasks and capabilities", async () => {
    assert.equal(env.name, "garden");
    assert.equal(env.capabilities.admissibleActions, true);
    const { tasks } = await env.tasks();
    assert.deepEqual(tasks.map((t) => t.id).sort(), ["pick-flower", "plant-seed", "water-plant"]);
    assert.deepEqual(tasks[0].splits, [{ name: "train", count: 4 }, { name: "test", count: 2 }]);
  });

  it("resets, lists admissible actions and steps", async () => {
    const reset = await env.reset({ task: "water-plant", split: "test", variation: 0, seed: 1 });
    assert.equal(reset.taskDescription, "Water the mint.");
    assert.equal(reset.maxScore, 3);
    const actions = await env.admissibleActions!();
    assert.ok(actions.includes("take can"), actions.join(", "));
    const step = await env.step("take can");
    assert.equal(step.reward, 1);
    assert.equal(step.done, false);
    assert.match(step.observation.parts?.inventory ?? "", /can/);
  });

  it("turns refusals into StepwireError with the protocol's codes", async () => {
    await env.reset({ task: "water-plant", seed: 1 });
    await assert.rejects(env.step("dance"), (e: unknown) => e instanceof StepwireError && e.code === ErrorCode.InvalidAction);
    await assert.rejects(env.reset({ task: "fly" }), (e: unknown) => {
      assert.ok(e instanceof StepwireError);
      assert.equal(e.code, ErrorCode.UnknownTask);
      assert.ok(e.data !== undefined, "the error lists what exists");
      return true;
    });
  });
});
