"""Play a Gymnasium-style text environment with a stepwire agent, one `agent/step` a turn.

The environment is anything with `reset(seed=..., options=...) -> (obs, info)` and
`step(action) -> (obs, reward, terminated, truncated, info)` where `obs` is a string (or an
observation dict `{"text", "parts"}`). The host keeps no history: only the augmented STEP-HRL
state `agent/step` hands back. What the loop reads from `info` (each key configurable):

* `admissible_actions`: the actions valid now (the policy is constrained to them);
* `task_description`: the task, on reset (else pass `task=`);
* `observation_parts`: named extra views (`look`, `inventory`) added to the observation;
* `score` (else the sum of rewards), `won` (else the episode counts as lost when it terminates);
* `invalid_action`: true when the environment refused the action (the world did not change);
  a policy that writes actions freely then gets one second choice among the admissible ones;
* on reset, optionally `episode` (an `EpisodeKey`), `reset` (the reset params), `max_score` and
  `reset_meta` for the recording.

Transitions are recorded exactly as the Rust controller does for `stepwire run --record`
(`sdk/src/controller`): a low-level line per action, a progress line per progress rewrite, a
high-level line per planned subtask (with the reward gathered while it ran), then the summary.
"""

from __future__ import annotations

import logging
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Generator, List, Optional, Tuple, Union

from . import recording as rec
from .errors import StepwireError
from .protocol import AgentStepParams, AgentStepResult, EpisodeKey, EpisodeSummary, Observation, Sampling, Usage

if TYPE_CHECKING:
    from .client import AsyncClient
    from .sync import Client

log = logging.getLogger("stepwire_host")


@dataclass
class InfoKeys:
    """Where the loop finds things in the environment's `info` dicts."""

    admissible_actions: str = "admissible_actions"
    task_description: str = "task_description"
    observation_parts: str = "observation_parts"
    score: str = "score"
    won: str = "won"
    episode: str = "episode"
    reset: str = "reset"
    max_score: str = "max_score"
    reset_meta: str = "reset_meta"
    invalid_action: str = "invalid_action"


def step_sampling(base: Optional[Sampling], episode_seed: Optional[int], key: EpisodeKey, step: int) -> Sampling:
    """The controller's per-step sampling (`step_sampling` in `sdk/src/controller`): the run's
    settings with a seed derived by FNV-1a from the seed, the episode and the step."""
    base = dict(base or {})
    seed = base.get("seed")
    seed = seed if seed is not None else (episode_seed if episode_seed is not None else 0)
    data = (struct.pack("<Q", seed) + key["task"].encode() + struct.pack("<Q", key["variation"])
            + struct.pack("<I", key.get("repeat", 0)) + struct.pack("<Q", step))
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    base["seed"] = h
    return base  # type: ignore[return-value]


def _zero_usage() -> Dict[str, int]:
    return {"promptTokens": 0, "cachedTokens": 0, "completionTokens": 0}


def _add_usage(total: Dict[str, Dict[str, int]], usage: Usage) -> None:
    for role in ("high", "low", "progress"):
        for field in ("promptTokens", "cachedTokens", "completionTokens"):
            total[role][field] += usage[role][field]  # type: ignore[literal-required]


class EpisodeLoop:
    """The loop's state between calls, shared by the blocking and asyncio drivers."""

    def __init__(self, obs: Any, info: Dict[str, Any], *, keys: InfoKeys, task: Optional[str],
                 episode: Optional[EpisodeKey], seed: Optional[int],
                 sampling: Optional[Sampling], use_admissible: bool, env_name: str) -> None:
        self.keys = keys
        self.task = task or info.get(keys.task_description)
        if not isinstance(self.task, str) or not self.task:
            raise ValueError(f"no task description: pass task=... or return it in the reset info as "
                             f"{keys.task_description!r}")
        given = dict(episode or info.get(keys.episode) or {})
        defaults = {"env": env_name, "task": self.task, "split": "default", "variation": 0, "repeat": 0}
        # In the Rust type's field order, whatever order the caller used.
        self.key: EpisodeKey = {k: given.get(k, v) for k, v in defaults.items()}  # type: ignore[assignment]
        self.reset = info.get(keys.reset) or {"task": self.key["task"]}
        self.max_score = info.get(keys.max_score)
        self.reset_meta = info.get(keys.reset_meta)
        self.seed = seed if seed is not None else self.reset.get("seed")
        self.sampling = sampling
        self.use_admissible = use_admissible
        self.state: Dict[str, Any] = {"task": self.task, "completedSubtasks": [], "subtask": None, "progress": "",
                                      "lastProgress": "", "pendingAction": None, "subtaskDone": False, "steps": 0}
        self.observation = self._observation(obs, info)
        self.info = info
        self.lines: List[Dict[str, Any]] = []
        self.usage = {role: _zero_usage() for role in ("high", "low", "progress")}
        self.score = 0.0
        self.reward_sum = 0.0
        self.outcome = "truncated"
        self.failure: Optional[str] = None
        self.open_plan: Optional[Dict[str, Any]] = None
        self.open_act: Optional[Dict[str, Any]] = None
        self.steps = 0
        self.env_seconds = 0.0
        self.agent_seconds = 0.0
        self._before: Dict[str, Any] = {}
        self._params: Dict[str, Any] = {}

    def _observation(self, obs: Any, info: Dict[str, Any]) -> Observation:
        if isinstance(obs, dict) and "text" in obs:
            value: Dict[str, Any] = {"text": str(obs["text"]), "parts": dict(obs.get("parts") or {})}
        else:
            value = {"text": str(obs), "parts": {}}
        value["parts"].update(info.get(self.keys.observation_parts) or {})
        return rec.observation_value(value)  # type: ignore[arg-type]

    def params(self) -> AgentStepParams:
        self._before = {**self.state, "completedSubtasks": list(self.state["completedSubtasks"])}
        params: Dict[str, Any] = {"state": self.state, "observation": self.observation}
        admissible = self.info.get(self.keys.admissible_actions)
        if self.use_admissible and admissible is not None:
            params["admissibleActions"] = [str(a) for a in admissible]
        params["sampling"] = step_sampling(self.sampling, self.seed, self.key, self.steps)
        self._params = params
        return params  # type: ignore[return-value]

    def _emit(self, step: int, level: Dict[str, Any], reward: float, done: bool, usage: Dict[str, int]) -> None:
        self.lines.append(rec.transition(self.key, step, level, reward, done, usage))  # type: ignore[arg-type]

    def _close_act(self, act: Dict[str, Any], next_progress: str) -> None:
        next_state = {"subtask": act["state"]["subtask"], "progress": next_progress,
                      "observation": act["next_observation"]}
        level = rec.low(act["state"], act["action"], act["subtask_done"], next_state)  # type: ignore[arg-type]
        self._emit(act["step"], level, act["reward"], act["done"], act["usage"])

    def _close_plan(self, plan: Dict[str, Any], next_state: Optional[Dict[str, Any]], done: bool) -> None:
        level = rec.high(plan["state"], plan["subtask"], next_state)  # type: ignore[arg-type]
        self._emit(plan["step"], level, plan["reward"], done, plan["usage"])

    def agent_answered(self, result: AgentStepResult, seconds: float) -> str:
        """Books the step's decisions; returns the action to play."""
        self.agent_seconds += seconds
        _add_usage(self.usage, result["usage"])
        before, decisions, next_state = self._before, result.get("decisions") or {}, result["nextState"]
        if decisions.get("progress") is not None:
            pstate = {"subtask": before.get("subtask") or "", "previousProgress": before.get("progress", ""),
                      "action": before.get("pendingAction") or "", "observation": self.observation}
            if self.open_act is not None:
                self._close_act(self.open_act, decisions["progress"])
                self.open_act = None
            self._emit(max(self.steps - 1, 0), rec.progress(pstate, decisions["progress"]), 0.0, False,
                       dict(result["usage"]["progress"]))
        if decisions.get("plannedSubtask") is not None:
            hstate = {"task": before["task"], "completedSubtasks": list(next_state.get("completedSubtasks", [])),
                      "lastProgress": next_state.get("lastProgress", ""), "observation": self.observation}
            if self.open_plan is not None:
                self._close_plan(self.open_plan, hstate, False)
            self.open_plan = {"step": self.steps, "state": hstate, "subtask": decisions["plannedSubtask"],
                              "reward": 0.0, "usage": dict(result["usage"]["high"])}
        if self.open_act is not None:
            self._close_act(self.open_act, self.open_act["state"]["progress"])
            self.open_act = None
        self._result = result
        return result["action"]

    def env_answered(self, action: str, subtask_done: bool, low_usage: Dict[str, int], obs: Any, reward: float,
                     terminated: bool, truncated: bool, info: Dict[str, Any], seconds: float) -> bool:
        """Books the environment's answer to `action` (the step's, or its repaired second
        choice); True when the episode is over."""
        self.env_seconds += seconds
        next_state = dict(self._result["nextState"])
        # The action played is the one progress summarises next step.
        next_state["pendingAction"], next_state["subtaskDone"] = action, subtask_done
        self.steps += 1
        self.reward_sum += float(reward)
        self.score = float(info.get(self.keys.score, self.reward_sum))
        new_obs = self._observation(obs, info)
        done = bool(terminated or truncated)
        if self.open_plan is not None:
            self.open_plan["reward"] += float(reward)
        self.open_act = {"step": self.steps - 1,
                         "state": {"subtask": next_state.get("subtask") or "", "progress": next_state.get("progress", ""),
                                   "observation": self.observation},
                         "action": action, "subtask_done": subtask_done,
                         "reward": float(reward), "done": done, "usage": low_usage,
                         "next_observation": new_obs}
        self.state = next_state
        self.observation = new_obs
        self.info = info
        if done:
            self.outcome = "won" if info.get(self.keys.won) else ("truncated" if truncated else "lost")
        return done

    def fail(self, reason: str) -> None:
        self.failure = reason

    def finish(self) -> EpisodeSummary:
        if self.open_act is not None:
            self._close_act(self.open_act, self.open_act["state"]["progress"])
            self.open_act = None
        if self.open_plan is not None:
            self._close_plan(self.open_plan, None, True)
            self.open_plan = None
        summary: Dict[str, Any] = {"episode": self.key, "taskDescription": self.task,
                                   "outcome": "failed" if self.failure else self.outcome,
                                   "score": float(self.score), "steps": self.steps}
        if self.failure is not None:
            summary["failure"] = self.failure
        summary["reset"] = self.reset
        if self.max_score is not None:
            summary["maxScore"] = float(self.max_score)
        if self.reset_meta is not None:
            summary["resetMeta"] = self.reset_meta
        summary.update({"envSeconds": self.env_seconds, "agentSeconds": self.agent_seconds, "usage": self.usage})
        self.lines.append(rec.summary_line(summary))  # type: ignore[arg-type]
        return summary  # type: ignore[return-value]


def _play(loop: EpisodeLoop, env: Any, max_steps: int, repair: bool) -> Generator[Tuple[str, Any], Any, None]:
    """The episode as a generator of agent requests, `(method, params)`: the blocking and the
    asyncio drivers send each answer back in (or throw its error), so the loop is written once."""
    from .errors import ConnectionClosed

    while loop.steps < max_steps:
        params = loop.params()
        t = time.monotonic()
        try:
            result = yield ("agent/step", params)
        except ConnectionClosed:
            raise
        except (StepwireError, TimeoutError) as e:
            loop.fail(f"policy: {e}")
            return
        action = loop.agent_answered(result, time.monotonic() - t)
        subtask_done = bool(result["subtaskDone"])
        low_usage = dict(result["usage"]["low"])
        t = time.monotonic()
        try:
            obs, reward, terminated, truncated, info = env.step(action)
        except Exception as e:  # the environment's own failure ends the episode, recorded
            loop.fail(f"step: {e}")
            return
        info = dict(info or {})
        env_seconds = time.monotonic() - t
        admissible = info.get(loop.keys.admissible_actions)
        if repair and info.get(loop.keys.invalid_action) and admissible:
            # A free-writing policy's action was refused: one constrained second choice, played
            # in the same step (the controller's `repair_refused`).
            next_state = result["nextState"]
            act = {"subtask": next_state.get("subtask") or "", "progress": next_state.get("progress", ""),
                   "observation": loop.observation, "admissibleActions": [str(a) for a in admissible],
                   "sampling": params["sampling"]}
            t = time.monotonic()
            try:
                chosen = yield ("agent/act", act)
            except ConnectionClosed:
                raise
            except (StepwireError, TimeoutError) as e:
                log.debug("repairing a refused action: %s", e)
                chosen = None
            loop.agent_seconds += time.monotonic() - t
            if chosen is not None:
                _add_usage(loop.usage, chosen["usage"])
                for field in low_usage:
                    low_usage[field] += chosen["usage"]["low"][field]
                action, subtask_done = chosen["action"], bool(chosen["subtaskDone"])
                t = time.monotonic()
                try:
                    obs, reward, terminated, truncated, info = env.step(action)
                except Exception as e:
                    loop.fail(f"step: {e}")
                    return
                info = dict(info or {})
                env_seconds += time.monotonic() - t
        if loop.env_answered(action, subtask_done, low_usage, obs, reward, terminated, truncated, info, env_seconds):
            return


def _start(env: Any, seed: Optional[int], options: Optional[Dict[str, Any]], **loop_args: Any) -> EpisodeLoop:
    t = time.monotonic()
    obs, info = env.reset(seed=seed, options=options)
    loop = EpisodeLoop(obs, dict(info or {}), seed=seed, env_name=type(env).__name__.lower(), **loop_args)
    loop.env_seconds += time.monotonic() - t
    return loop


def _finish(loop: EpisodeLoop, record: Optional[Union[str, Path]]) -> EpisodeSummary:
    summary = loop.finish()
    if record is not None:
        rec.RecordFile(record).write_episode(loop.lines)  # type: ignore[arg-type]
    return summary


def _constrained(info: Optional[Dict[str, Any]], admissible: Optional[bool]) -> bool:
    """Whether to constrain the policy to admissible actions: as asked, else as the server's
    policy says (`constrainedDecoding`; a free-writing policy gets them only to repair a refusal)."""
    if admissible is not None:
        return admissible
    agent = ((info or {}).get("capabilities") or {}).get("agent") or {}
    return bool(agent.get("constrainedDecoding", True))


def run_episode(client: "Client", env: Any, *, max_steps: int = 100, record: Optional[Union[str, Path]] = None,
                task: Optional[str] = None, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None,
                episode: Optional[EpisodeKey] = None, sampling: Optional[Sampling] = None,
                admissible: Optional[bool] = None, keys: InfoKeys = InfoKeys(),
                timeout: Optional[float] = None) -> EpisodeSummary:
    """Play one episode of `env` (at most `max_steps` steps) with the agent behind `client`;
    append its record lines to `record` (a JSONL path) when given; return its summary.

    `admissible`: pass the environment's admissible actions to the policy (None: when the
    server's policy decodes constrained, as `stepwire run` does). A policy error or an
    environment exception ends the episode with outcome `failed` and the reason in `failure`,
    as in `stepwire run`; a dead server (`ConnectionClosed`) is raised."""
    constrained = _constrained(client.info, admissible)  # type: ignore[arg-type]
    loop = _start(env, seed, options, keys=keys, task=task, episode=episode, sampling=sampling,
                  use_admissible=constrained)
    game = _play(loop, env, max_steps, repair=not constrained)
    answer: Any = None
    error: Optional[BaseException] = None
    while True:
        try:
            method, params = game.throw(error) if error is not None else game.send(answer)
        except StopIteration:
            break
        answer, error = None, None
        try:
            answer = client.request(method, params, timeout=timeout)
        except Exception as e:
            error = e
    return _finish(loop, record)


async def arun_episode(client: "AsyncClient", env: Any, *, max_steps: int = 100,
                       record: Optional[Union[str, Path]] = None, task: Optional[str] = None,
                       seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None,
                       episode: Optional[EpisodeKey] = None, sampling: Optional[Sampling] = None,
                       admissible: Optional[bool] = None, keys: InfoKeys = InfoKeys(),
                       timeout: Optional[float] = None) -> EpisodeSummary:
    """`run_episode` for an `AsyncClient` (the environment's own calls stay blocking)."""
    constrained = _constrained(client.info, admissible)  # type: ignore[arg-type]
    loop = _start(env, seed, options, keys=keys, task=task, episode=episode, sampling=sampling,
                  use_admissible=constrained)
    game = _play(loop, env, max_steps, repair=not constrained)
    answer: Any = None
    error: Optional[BaseException] = None
    while True:
        try:
            method, params = game.throw(error) if error is not None else game.send(answer)
        except StopIteration:
            break
        answer, error = None, None
        try:
            answer = await client.request(method, params, timeout=timeout)
        except Exception as e:
            error = e
    return _finish(loop, record)
