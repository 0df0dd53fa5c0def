// Environments an episode can be played in: the TextEnvironment interface a host implements for
// its own game, and BridgeEnvironment, the environment plane's client for any stepwire bridge
// process (`env/tasks`, `env/reset`, `env/step`, `env/admissibleActions`).
import { ChildPeer } from "./child.js";
import type {
  EnvironmentCapabilities,
  ResetParams,
  ResetResult,
  StepResult,
  TasksResult,
} from "./generated/protocol.js";
import { stderrLogger, type Logger } from "./logger.js";

/** A text environment: what the episode loop needs. A web game implements this in-process. */
export interface TextEnvironment {
  /** The environment's name, recorded in each line's episode key. */
  readonly name: string;
  reset(params: ResetParams): Promise<ResetResult>;
  /** Plays an action. An action the environment refuses throws a StepwireError -31001. */
  step(action: string): Promise<StepResult>;
  /** The actions valid now; absent when the environment cannot list them. */
  admissibleActions?(): Promise<string[]>;
}

export interface SpawnBridgeOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

/** A bridge process (e.g. `python bridges/scienceworld/bridge.py`) as a TextEnvironment. */
export class BridgeEnvironment implements TextEnvironment {
  readonly admissibleActions?: () => Promise<string[]>;

  private constructor(
    private readonly child: ChildPeer,
    readonly capabilities: EnvironmentCapabilities,
  ) {
    if (capabilities.admissibleActions) {
      this.admissibleActions = async () =>
        (await this.child.peer.request<{ actions: string[] }>("env/admissibleActions", {})).actions;
    }
  }

  /** Spawns the bridge and initializes it (a bridge may take seconds: ScienceWorld starts a JVM). */
  static async spawn(command: string, args: string[] = [], options: SpawnBridgeOptions = {}): Promise<BridgeEnvironment> {
    const child = new ChildPeer({
      command,
      args,
      cwd: options.cwd,
      env: options.env,
      logger: options.logger ?? stderrLogger("bridge"),
    });
    try {
      const info = await child.peer.initialize();
      const capabilities = info.capabilities.environment;
      if (!capabilities) throw new Error(`${command} ${args.join(" ")} is not a bridge: no environment capabilities`);
      return new BridgeEnvironment(child, capabilities);
    } catch (error) {
      await child.dispose();
      throw error;
    }
  }

  get name(): string {
    return this.capabilities.name;
  }

  tasks(): Promise<TasksResult> {
    return this.child.peer.request("env/tasks", {});
  }

  reset(params: ResetParams): Promise<ResetResult> {
    return this.child.peer.request("env/reset", params);
  }

  step(action: string): Promise<StepResult> {
    return this.child.peer.request("env/step", { action });
  }

  /** `shutdown` and `exit`, then the process is killed if it lingers. */
  dispose(): Promise<void> {
    return this.child.dispose(5000);
  }
}
