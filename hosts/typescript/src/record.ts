// Recording lines (schemas/record.line.json), built as `stepwire run --record` builds them: a
// low-level transition is closed when the progress its action led to is known, a high-level one
// at the next plan (or the episode's end), and the episode's summary comes last.
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type {
  EpisodeKey,
  EpisodeSummary,
  HighState,
  LowState,
  Observation,
  RecordLine,
  RoleUsage,
  TransitionRecord,
  TransitionRecord1,
} from "./generated/protocol.js";

/** Receives the lines of a recording as an episode produces them. */
export interface RecordSink {
  write(line: RecordLine): void;
}

/** Appends each line to a JSONL file (created empty, with its folder, unless `append`). */
export class JsonlRecordFile implements RecordSink {
  constructor(
    readonly path: string,
    options: { append?: boolean } = {},
  ) {
    mkdirSync(dirname(path), { recursive: true });
    if (!options.append) writeFileSync(path, "");
  }

  write(line: RecordLine): void {
    appendFileSync(this.path, JSON.stringify(line) + "\n");
  }
}

/** Keeps the lines in memory. */
export class MemoryRecord implements RecordSink {
  readonly lines: RecordLine[] = [];
  write(line: RecordLine): void {
    this.lines.push(line);
  }
}

/** A transition before its episode key: one level's body and the fields every level shares. */
type Transition = TransitionRecord1 & Pick<TransitionRecord, "step" | "reward" | "done" | "usage">;

/** A subtask planned, waiting for the state at the next plan. */
export interface OpenPlan {
  step: number;
  state: HighState;
  subtask: string;
  reward: number;
  usage: RoleUsage;
}

/** An action taken, waiting for the progress it leads to. */
export interface OpenAct {
  step: number;
  state: LowState;
  action: string;
  subtaskDone: boolean;
  reward: number;
  done: boolean;
  usage: RoleUsage;
  nextObservation: Observation;
}

/** Writes one episode's lines into a sink. */
export class EpisodeRecorder {
  constructor(
    private readonly key: EpisodeKey,
    private readonly sink: RecordSink | undefined,
  ) {}

  emit(t: Transition): void {
    const line = { kind: "transition", episode: this.key, ...t } as RecordLine;
    this.sink?.write(line);
  }

  closePlan(plan: OpenPlan, next: HighState | null, done: boolean): void {
    const { step, state, subtask, reward, usage } = plan;
    this.emit({ level: "high", step, state, subtask, nextState: next, reward, done, usage });
  }

  closeAct(act: OpenAct, nextProgress: string): void {
    const nextState: LowState = { subtask: act.state.subtask, progress: nextProgress, observation: act.nextObservation };
    const { step, state, action, subtaskDone, reward, done, usage } = act;
    this.emit({ level: "low", step, state, action, subtaskDone, nextState, reward, done, usage });
  }

  summary(summary: EpisodeSummary): void {
    this.sink?.write({ kind: "episode", ...summary });
  }
}
