// The agent plane over stdio against the real `stepwire serve --stdio`.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  AgentClient,
  CancellationTokenSource,
  ConnectionClosedError,
  ErrorCode,
  StepwireError,
  silentLogger,
  type Logger,
} from "../src/index.js";
import { repoRoot, stepwireBin } from "./support.js";

const observation = { text: "You are in a garden. On the ground: can, rake." };

describe("agent plane over stdio (rules policy)", () => {
  let agent: AgentClient;
  before(async () => {
    agent = await AgentClient.spawn({ policy: "rules", bin: stepwireBin(), cwd: repoRoot, logger: silentLogger });
  });
  after(() => agent.dispose());

  it("initializes and reports the policy's roles", () => {
    assert.deepEqual([...(agent.capabilities?.roles ?? [])].sort(), ["high", "low", "progress"]);
    assert.equal(agent.info.protocolVersion, 1);
  });

  it("answers plan, act, progress and step", async () => {
    const plan = await agent.plan({ task: "Water the rose.", observation });
    assert.equal(typeof plan.subtask, "string");
    assert.ok(plan.subtask.length > 0);
    const act = await agent.act({ subtask: plan.subtask, observation, admissibleActions: ["take can", "look"] });
    assert.equal(act.action, "take can", "the rules actor picks the first admissible action");
    const progress = await agent.progress({ subtask: plan.subtask, action: "take can", observation: { text: "You take the can." } });
    assert.equal(typeof progress.progress, "string");
    const step = await agent.step({ state: { task: "Water the rose." }, observation, admissibleActions: ["take can", "look"] });
    assert.equal(step.action, "take can");
    assert.equal(step.decisions.plannedSubtask, step.nextState.subtask);
    assert.equal(step.nextState.task, "Water the rose.");
  });

  it("turns invalid params into a StepwireError with code -32602 and data", async () => {
    await assert.rejects(agent.step({ observation } as any), (e: unknown) => {
      assert.ok(e instanceof StepwireError);
      assert.equal(e.code, ErrorCode.InvalidParams);
      assert.equal(e.method, "agent/step");
      assert.match(e.message, /state/);
      return true;
    });
  });

  it("turns an unknown method into a StepwireError with code -32601", async () => {
    await assert.rejects(agent.peer.request("agent/teleport", {}), (e: unknown) => {
      assert.ok(e instanceof StepwireError);
      assert.equal(e.code, ErrorCode.MethodNotFound);
      return true;
    });
  });
});

describe("agent plane over stdio (tiny-llama: long generations)", () => {
  // The random-weight model writes ~1,400 tokens for this prompt: seconds of work to interrupt.
  const slow = { subtask: "x", observation: { text: "hello" }, sampling: { maxTokens: 1500, temperature: 1, seed: 3 } };
  const spawnSlow = (logger: Logger = silentLogger) =>
    AgentClient.spawn({ policy: "models/tiny-llama", bin: stepwireBin(), cwd: repoRoot, args: ["--max-new-tokens", "2000"], logger });

  it("cancels a request in flight with $/cancelRequest (-32800) and stays usable", async () => {
    const agent = await spawnSlow();
    try {
      const source = new CancellationTokenSource();
      const pending = agent.act(slow, source.token);
      setTimeout(() => source.cancel(), 300);
      await assert.rejects(pending, (e: unknown) => {
        assert.ok(e instanceof StepwireError, String(e));
        assert.equal(e.code, ErrorCode.RequestCancelled);
        return true;
      });
      const quick = await agent.act({ ...slow, sampling: { maxTokens: 4 } });
      assert.equal(quick.usage.low.completionTokens <= 4, true);
    } finally {
      await agent.dispose();
    }
  });

  it("rejects the pending call with a clear error when the server is killed mid-request", async () => {
    const agent = await spawnSlow();
    const pid = agent.pid!;
    assert.ok(pid > 0);
    const pending = agent.act(slow);
    setTimeout(() => process.kill(pid, "SIGKILL"), 300);
    await assert.rejects(pending, (e: unknown) => {
      assert.ok(e instanceof ConnectionClosedError, String(e));
      assert.equal(e.method, "agent/act");
      assert.match(e.message, /killed by SIGKILL/);
      return true;
    });
    await assert.rejects(agent.plan({ task: "t", observation }), ConnectionClosedError);
    await agent.dispose();
  });

  it("kills the server on dispose", async () => {
    const agent = await AgentClient.spawn({ policy: "rules", bin: stepwireBin(), cwd: repoRoot, logger: silentLogger });
    const pid = agent.pid!;
    assert.doesNotThrow(() => process.kill(pid, 0), "running before dispose");
    await agent.dispose();
    assert.throws(() => process.kill(pid, 0), /ESRCH/, "gone after dispose");
  });

  it("kills a server that does not answer shutdown", async () => {
    const agent = await AgentClient.spawn({ policy: "rules", bin: stepwireBin(), cwd: repoRoot, logger: silentLogger });
    const pid = agent.pid!;
    process.kill(pid, "SIGSTOP"); // hung: reads nothing, answers nothing
    const t0 = performance.now();
    await agent.dispose();
    assert.throws(() => process.kill(pid, 0), /ESRCH/);
    assert.ok(performance.now() - t0 < 10_000);
  });

  it("says why when the binary cannot be started", async () => {
    await assert.rejects(
      AgentClient.spawn({ policy: "rules", bin: "/nonexistent/stepwire", logger: silentLogger }),
      (e: unknown) => e instanceof ConnectionClosedError && /could not start/.test(e.message),
    );
  });

  it("says why when the policy cannot be loaded (stderr in the error)", async () => {
    await assert.rejects(
      AgentClient.spawn({ policy: "models/does-not-exist", bin: stepwireBin(), cwd: repoRoot, logger: silentLogger }),
      (e: unknown) => e instanceof ConnectionClosedError && /exited with code/.test(e.message) && /does-not-exist/.test(e.message),
    );
  });
});
