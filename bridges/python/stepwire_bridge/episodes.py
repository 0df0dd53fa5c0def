"""The environment plane's methods, with what the SDK checks for every bridge: `env/reset`'s
task, split, variation and options against what the environment announced (the split and
variation filled in), and the episode's state (no step before a reset, after `done` or after a
crash). The Rust harness does the same (`sdk/src/harness/episodes.rs`); tests/sdk-cases/ holds
both to it."""

from __future__ import annotations

import random
from typing import Any, Callable, List, Optional, TypeVar

from . import errors as E
from .contract import method
from .environment import Environment
from .params import object_params, opt_str, opt_uint, req_str
from .values import ResultError, actions_json, expert_json, reset_json, step_json, task_json

ENV_TASKS, ENV_RESET, ENV_STEP = method("env/tasks"), method("env/reset"), method("env/step")
ENV_ADMISSIBLE, ENV_EXPERT = method("env/admissibleActions"), method("env/expertAction")
T = TypeVar("T")


class _Episode:
    __slots__ = ("id", "done")

    def __init__(self, eid: str) -> None:
        self.id = eid
        self.done = False


class EnvMethods:
    """Serves `env/*` for one environment; called from the server's one worker thread."""

    def __init__(self, env: Environment) -> None:
        self._env = env
        self._tasks_cache: Optional[List[dict]] = None
        self._episode: Optional[_Episode] = None
        self._episodes = 0

    def load_tasks(self) -> List[dict]:
        tasks = self._env.tasks()
        if not isinstance(tasks, (list, tuple)):
            raise ResultError("tasks() must return a list of Task")
        self._tasks_cache = [task_json(t) for t in tasks]
        return self._tasks_cache

    def tasks(self, params: Any) -> dict:
        object_params(params, ENV_TASKS)
        return {"tasks": self.load_tasks()}

    def reset(self, params: Any) -> dict:
        env = self._env
        p = object_params(params, ENV_RESET, required=True)
        task = req_str(p, "task")
        split = opt_str(p, "split")
        variation = opt_uint(p, "variation")
        seed = opt_uint(p, "seed")
        options = p.get("options")
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise E.InvalidParams("`options` must be an object")
        known_options = [str(o) for o in env.reset_options]
        unknown = sorted(k for k in options if k not in known_options)
        if unknown:
            raise E.InvalidParams(
                f"unknown reset option(s) {unknown}; this environment understands {known_options}"
            )
        tasks = self._tasks_cache if self._tasks_cache is not None else self.load_tasks()
        info = next((t for t in tasks if t["id"] == task), None)
        if info is None:
            raise E.UnknownTask(f"unknown task `{task}`", data={"tasks": [t["id"] for t in tasks]})
        split_names = [s["name"] for s in info["splits"]]
        if split is None:
            if not split_names:
                raise E.UnknownTask(f"task `{task}` has no splits", data={"task": task, "splits": []})
            split = env.default_split if env.default_split in split_names else split_names[0]
        if split not in split_names:
            raise E.UnknownTask(
                f"task `{task}` has no split `{split}`", data={"task": task, "splits": split_names}
            )
        count = next(s["count"] for s in info["splits"] if s["name"] == split)
        if variation is None:
            if count == 0:
                raise E.UnknownTask(
                    f"split `{split}` of task `{task}` is empty", data={"task": task, "split": split, "count": 0}
                )
            # The same rule in every SDK (tests/sdk-cases/): a seed picks variation seed % count.
            variation = seed % count if seed is not None else random.randrange(count)
        elif variation >= count:
            raise E.UnknownTask(
                f"variation {variation} is out of range: split `{split}` of task `{task}` has {count}",
                data={"task": task, "split": split, "count": count},
            )
        self._episode = None  # the old episode is gone, whatever happens next
        r = env.reset(task=task, split=split, variation=variation, seed=seed, options=dict(options))
        self._episodes += 1
        eid = getattr(r, "episode_id", None)
        if eid is None:
            eid = f"{self._episodes}:{task}/{split}/{variation}"
        elif not isinstance(eid, str):
            raise ResultError("Reset.episode_id must be a str")
        result = reset_json(r, eid, variation)
        self._episode = _Episode(eid)
        return result

    def _need_episode(self) -> _Episode:
        if self._episode is None:
            raise E.NoEpisode("no episode: call `env/reset` first")
        return self._episode

    def _in_episode(self, call: Callable[[], T]) -> T:
        """Runs an environment call on the live episode; a crash ends the episode."""
        try:
            return call()
        except E.EnvironmentCrashed:
            self._episode = None
            raise

    def step(self, params: Any) -> dict:
        p = object_params(params, ENV_STEP, required=True)
        action = req_str(p, "action")
        episode = self._need_episode()
        if episode.done:
            raise E.EpisodeOver(f"episode `{episode.id}` is over: reset before stepping again")
        result = step_json(self._in_episode(lambda: self._env.step(action)))
        if result["done"]:
            episode.done = True
        return result

    def admissible(self, params: Any) -> dict:
        object_params(params, ENV_ADMISSIBLE)
        self._need_episode()
        return {"actions": actions_json(self._in_episode(self._env.admissible_actions))}

    def expert(self, params: Any) -> dict:
        object_params(params, ENV_EXPERT)
        self._need_episode()
        return expert_json(self._in_episode(self._env.expert_action))
