// The agent plane over WebSocket against the real `stepwire serve --listen` with a bearer token.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AgentClient, CancellationTokenSource, ConnectionClosedError, ErrorCode, StepwireError, silentLogger } from "../src/index.js";
import { startListening, type Listening } from "./support.js";

const token = "test-token-7f3a";
const observation = { text: "hello" };

describe("agent plane over WebSocket (tiny-llama)", () => {
  let server: Listening;
  before(async () => {
    server = await startListening("models/tiny-llama", token, ["--max-new-tokens", "2000"]);
  });
  after(() => server.stop());

  it("refuses a connection without the token (HTTP 401)", async () => {
    await assert.rejects(AgentClient.connect(server.url, { logger: silentLogger }), /HTTP 401/);
    await assert.rejects(AgentClient.connect(server.url, { token: "wrong", logger: silentLogger }), /HTTP 401/);
  });

  it("initializes and plays agent/step with the token", async () => {
    const agent = await AgentClient.connect(server.url, { token, logger: silentLogger });
    try {
      assert.equal(agent.info.protocolVersion, 1);
      assert.ok(agent.capabilities?.roles.includes("low"));
      const step = await agent.step({ state: { task: "Water the rose." }, observation, admissibleActions: ["take can", "look"] });
      assert.ok(["take can", "look"].includes(step.action), step.action);
      assert.ok(step.nextState.subtask, "a subtask was planned");
      assert.ok(step.usage.low.promptTokens > 0);
    } finally {
      await agent.dispose();
    }
  });

  it("carries errors and cancellation as stdio does", async () => {
    const agent = await AgentClient.connect(server.url, { token, logger: silentLogger });
    try {
      await assert.rejects(agent.act({ observation } as any), (e: unknown) => e instanceof StepwireError && e.code === ErrorCode.InvalidParams);
      await assert.rejects(agent.peer.request("agent/teleport", {}), (e: unknown) => e instanceof StepwireError && e.code === ErrorCode.MethodNotFound);
      const source = new CancellationTokenSource();
      const pending = agent.act({ subtask: "x", observation, sampling: { maxTokens: 1500, temperature: 1, seed: 3 } }, source.token);
      setTimeout(() => source.cancel(), 300);
      await assert.rejects(pending, (e: unknown) => e instanceof StepwireError && e.code === ErrorCode.RequestCancelled);
    } finally {
      await agent.dispose();
    }
  });

  it("rejects pending calls when the server goes away", async () => {
    const own = await startListening("models/tiny-llama", token, ["--max-new-tokens", "2000"]);
    const agent = await AgentClient.connect(own.url, { token, logger: silentLogger });
    const pending = agent.act({ subtask: "x", observation, sampling: { maxTokens: 1500, temperature: 1, seed: 3 } });
    setTimeout(() => own.process.kill("SIGKILL"), 300);
    await assert.rejects(pending, (e: unknown) => e instanceof ConnectionClosedError && /WebSocket ws:\/\/127.0.0.1:\d+ closed with code 1006/.test(e.message));
    await agent.dispose();
    await own.stop();
  });
});
