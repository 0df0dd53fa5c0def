// The episode loop of a host: reset the environment, then one `agent/step` per environment step.
// The host carries the augmented STEP-HRL state from one step to the next and keeps no history;
// the loop optionally records the episode as `stepwire run --record` does.
import type { CancellationToken } from "vscode-jsonrpc";
import type { AgentClient } from "./agent.js";
import type { TextEnvironment } from "./environment.js";
import { StepwireError } from "./errors.js";
import {
  ErrorCode,
  type AgentStepResult,
  type AugmentedState,
  type EpisodeOutcome,
  type EpisodeSummary,
  type HighState,
  type Observation,
  type ResetParams,
  type RoleUsage,
  type Sampling,
  type StepResult,
  type Usage,
} from "./generated/protocol.js";
import { EpisodeRecorder, JsonlRecordFile, type OpenAct, type OpenPlan, type RecordSink } from "./record.js";

export interface EpisodeOptions {
  /** The `env/reset` params: task, split, variation, seed, options. */
  reset: ResetParams;
  /** Environment steps before the episode is cut (outcome `truncated`); default 100. */
  maxSteps?: number;
  /** A JSONL file path, or any sink, that receives the recording lines. */
  record?: string | RecordSink;
  /** Decoding settings sent with every step (greedy when absent). */
  sampling?: Sampling;
  /** Called after each environment step. */
  onStep?: (step: { index: number; decision: AgentStepResult; action: string; result: StepResult }) => void;
  /** Stops the episode: the step in flight is cancelled (`$/cancelRequest`) and the call throws. */
  token?: CancellationToken;
}

const zero = (): RoleUsage => ({ promptTokens: 0, cachedTokens: 0, completionTokens: 0 });
const add = (a: RoleUsage, b: RoleUsage): RoleUsage => ({
  promptTokens: a.promptTokens + b.promptTokens,
  cachedTokens: a.cachedTokens + b.cachedTokens,
  completionTokens: a.completionTokens + b.completionTokens,
});
const addUsage = (a: Usage, b: Usage): Usage => ({
  high: add(a.high, b.high),
  low: add(a.low, b.low),
  progress: add(a.progress, b.progress),
});

/** Plays one episode of `env` with the agent and returns its summary (the recording's last line). */
export async function runEpisode(agent: AgentClient, env: TextEnvironment, options: EpisodeOptions): Promise<EpisodeSummary> {
  const maxSteps = options.maxSteps ?? 100;
  const sink = typeof options.record === "string" ? new JsonlRecordFile(options.record) : options.record;
  // The policy chooses among admissible actions only when it decodes constrained; a free-writing
  // one gets them only to repair an action the environment refuses.
  const constrained = agent.capabilities?.constrainedDecoding === true && env.admissibleActions !== undefined;
  let envMs = 0;
  let agentMs = 0;
  const timed = async <T>(which: "env" | "agent", work: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await work();
    } finally {
      if (which === "env") envMs += performance.now() - t0;
      else agentMs += performance.now() - t0;
    }
  };

  const first = await timed("env", () => env.reset(options.reset));
  // The bridge's default split has no name on the wire; "default" stands for it in the key.
  const key = { env: env.name, task: options.reset.task, split: options.reset.split ?? "default", variation: first.variation, repeat: 0 };
  const rec = new EpisodeRecorder(key, sink);
  let state: AugmentedState = { task: first.taskDescription };
  let observation: Observation = first.observation;
  let usage: Usage = { high: zero(), low: zero(), progress: zero() };
  let score = 0;
  let steps = 0;
  let outcome: EpisodeOutcome = "truncated";
  let failure: string | undefined;
  let openPlan: OpenPlan | undefined;
  let openAct: OpenAct | undefined;

  while (steps < maxSteps) {
    const before = state;
    let admissible: string[] | undefined;
    try {
      admissible = constrained ? await timed("env", () => env.admissibleActions!()) : undefined;
    } catch (error) {
      failure = `admissible actions: ${(error as Error).message}`;
      break;
    }
    let decision: AgentStepResult;
    try {
      decision = await timed("agent", () =>
        agent.step({ state, observation, admissibleActions: admissible, sampling: options.sampling }, options.token),
      );
    } catch (error) {
      if (isCancelled(error)) throw error;
      failure = `policy: ${(error as Error).message}`;
      break;
    }
    usage = addUsage(usage, decision.usage);
    const next = decision.nextState;

    // Close what this step's decisions completed.
    const progress = decision.decisions.progress;
    if (progress != null) {
      if (openAct) rec.closeAct(openAct, progress);
      openAct = undefined;
      const pstate = {
        subtask: before.subtask ?? "",
        previousProgress: before.progress ?? "",
        action: before.pendingAction ?? "",
        observation,
      };
      rec.emit({ level: "progress", step: Math.max(steps - 1, 0), state: pstate, progress, reward: 0, done: false, usage: decision.usage.progress });
    }
    const planned = decision.decisions.plannedSubtask;
    if (planned != null) {
      const hstate: HighState = {
        task: before.task,
        completedSubtasks: next.completedSubtasks ?? [],
        lastProgress: next.lastProgress ?? "",
        observation,
      };
      if (openPlan) rec.closePlan(openPlan, hstate, false);
      openPlan = { step: steps, state: hstate, subtask: planned, reward: 0, usage: decision.usage.high };
    }
    if (openAct) rec.closeAct(openAct, openAct.state.progress);
    openAct = undefined;

    let action = decision.action;
    let subtaskDone = decision.subtaskDone;
    let lowUsage = decision.usage.low;
    let result: StepResult;
    try {
      result = await timed("env", () => env.step(action));
    } catch (error) {
      if (!(error instanceof StepwireError && error.code === ErrorCode.InvalidAction)) {
        failure = `step: ${(error as Error).message}`;
        break;
      }
      const repaired = constrained ? undefined : await repair(agent, env, next, observation, options, timed);
      if (repaired) {
        ({ action, subtaskDone, result } = repaired);
        usage = addUsage(usage, repaired.usage);
        lowUsage = add(lowUsage, repaired.usage.low);
      } else {
        // The world did not change: the refusal is what the policy sees next.
        result = { observation: { text: `Invalid action: ${error.message}` }, reward: 0, score, done: false, won: false };
      }
    }
    steps += 1;
    score = result.score;
    if (openPlan) openPlan.reward += result.reward;
    openAct = {
      step: steps - 1,
      state: { subtask: next.subtask ?? "", progress: next.progress ?? "", observation },
      action,
      subtaskDone,
      reward: result.reward,
      done: result.done,
      usage: lowUsage,
      nextObservation: result.observation,
    };
    options.onStep?.({ index: steps - 1, decision, action, result });
    state = { ...next, pendingAction: action, subtaskDone };
    observation = result.observation;
    if (result.done) {
      outcome = result.won ? "won" : result.truncated ? "truncated" : "lost";
      break;
    }
  }

  if (openAct) rec.closeAct(openAct, openAct.state.progress);
  if (openPlan) rec.closePlan(openPlan, null, true);
  const summary: EpisodeSummary = {
    episode: key,
    taskDescription: first.taskDescription,
    outcome: failure ? "failed" : outcome,
    score,
    steps,
    ...(failure ? { failure } : {}),
    reset: options.reset,
    ...(first.maxScore != null ? { maxScore: first.maxScore } : {}),
    ...(first._meta ? { resetMeta: first._meta } : {}),
    envSeconds: envMs / 1000,
    agentSeconds: agentMs / 1000,
    usage,
  };
  rec.summary(summary);
  return summary;
}

function isCancelled(error: unknown): boolean {
  return error instanceof StepwireError && error.code === ErrorCode.RequestCancelled;
}

/**
 * A free-writing policy's action was refused: the low level chooses again among the admissible
 * actions and that one is played. Undefined when no list or no second choice can be had.
 */
async function repair(
  agent: AgentClient,
  env: TextEnvironment,
  next: AugmentedState,
  observation: Observation,
  options: EpisodeOptions,
  timed: <T>(which: "env" | "agent", work: () => Promise<T>) => Promise<T>,
): Promise<{ action: string; subtaskDone: boolean; result: StepResult; usage: Usage } | undefined> {
  if (!env.admissibleActions) return undefined;
  try {
    const admissible = await timed("env", () => env.admissibleActions!());
    if (admissible.length === 0) return undefined;
    const params = { subtask: next.subtask ?? "", progress: next.progress ?? "", observation, admissibleActions: admissible, sampling: options.sampling };
    const chosen = await timed("agent", () => agent.act(params, options.token));
    const result = await timed("env", () => env.step(chosen.action));
    return { action: chosen.action, subtaskDone: chosen.subtaskDone, result, usage: chosen.usage };
  } catch {
    return undefined;
  }
}
