"""Serve any Gymnasium environment whose observations are, or can be rendered as, text.

    import stepwire_bridge as sw
    from stepwire_bridge.gymnasium import GymTask, GymnasiumEnvironment, SeedSplits, require

    require("minigrid")  # a clear message and exit code 2 when a package is missing
    tasks = [GymTask("goto-red-ball", "BabyAI-GoToRedBall-v0", labels=["turn left", ...])]
    sw.serve(lambda: GymnasiumEnvironment("babyai", tasks, SeedSplits.from_sizes(train=1000, test=100),
                                          render=my_text_view))

The mapping:

* a task is a registered environment id (with ``gymnasium.make`` keyword arguments);
* a split is a range of Gymnasium seeds, the splits disjoint; variation ``v`` of a split is the
  ``v``-th seed of its range, passed to ``env.reset(seed=...)`` (so a reset repeats exactly; the
  protocol's ``seed`` only picks the variation when the client names none);
* the observation text comes from a pluggable renderer ``render(env, obs, info)``, the task's or
  the environment's (default: the observation itself when it is a string, else the ``ansi``
  rendering without colour codes);
* the task description from ``describe(env, obs, info)`` (default: ``obs["mission"]`` when there is
  one, else the task's description);
* actions: for a ``Discrete`` action space, the task's labels (one per action index; matched
  ignoring case and repeated spaces); for a ``Text`` action space the string itself. The
  admissible actions are ``info["admissible_actions"]`` when the environment gives them, else
  the labels that ``info["action_mask"]`` allows, else all the labels;
* score is the sum of rewards; ``done`` is terminated or truncated; ``won`` is the task's predicate
  (default: terminated with a positive last reward);
* ``env/expertAction`` when an expert factory is given: ``expert(env)`` is called at each reset and
  returns an advisor ``advise(last_action) -> action`` (an index, a label, ``None``, or
  ``(action, subtask)``). The advisor is consulted exactly once per state, in order, with the
  action actually taken before it, even when nobody asks (planners such as BabyAI's bot keep
  state between calls); asking twice gives the same answer. An expert that raises never fails
  the agent's step: ``env/expertAction`` answers ``NoExpert`` with the reason for the rest of
  the episode. ``value_iteration_expert`` is one
  for tabular environments that publish their transition table ``P`` (Taxi, FrozenLake...).

Gymnasium is imported lazily: the SDK core stays standard-library only.
"""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .environment import Environment
from .errors import EnvironmentCrashed, InvalidAction, NoEpisode, NoExpert
from .values import Expert, Observation, Reset, Step, Task

INSTALL_HINT = {
    "gymnasium": "pip install 'stepwire-bridge[gymnasium]' (or gymnasium)",
    "minigrid": "pip install minigrid (BabyAI and MiniGrid)",
}

Renderer = Callable[[Any, Any, Dict[str, Any]], Union[str, Observation]]
Describer = Callable[[Any, Any, Dict[str, Any]], str]
Advisor = Callable[[Optional[int]], Any]
ExpertFactory = Callable[[Any], Advisor]
WonRule = Callable[[float, bool, Dict[str, Any]], bool]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_UNSET = object()


class MissingDependency(RuntimeError):
    pass


def load(package: str):
    """Imports ``package``, or raises :class:`MissingDependency` saying what to install."""
    try:
        return importlib.import_module(package)
    except ImportError as e:
        hint = INSTALL_HINT.get(package, f"pip install {package}")
        raise MissingDependency(f"this bridge needs the Python package `{package}` ({e}); install it: {hint} "
                                "(scripts/setup.sh installs requirements/bridges.txt)") from None


def require(*packages: str) -> None:
    """For a bridge's ``main``: gymnasium and ``packages`` importable, else a one-line message on
    stderr and exit code 2 (no traceback)."""
    try:
        for p in ("gymnasium",) + packages:
            load(p)
    except MissingDependency as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


@dataclass
class SeedSplits:
    """Named, disjoint ranges of Gymnasium seeds."""

    ranges: Dict[str, range]

    def __post_init__(self) -> None:
        seen: List[Tuple[str, range]] = []
        for name, r in self.ranges.items():
            if not isinstance(r, range) or r.step != 1 or len(r) == 0:
                raise ValueError(f"split {name!r} must be a non-empty range of seeds with step 1, got {r!r}")
            for other, o in seen:
                if r.start < o.stop and o.start < r.stop:
                    raise ValueError(f"splits {other!r} ({o}) and {name!r} ({r}) share seeds")
            seen.append((name, r))

    @classmethod
    def from_sizes(cls, start: int = 0, **sizes: int) -> "SeedSplits":
        """Consecutive ranges from ``start`` in the order given: ``from_sizes(train=1000, test=100)``
        is train = seeds 0..999, test = 1000..1099."""
        ranges, at = {}, start
        for name, n in sizes.items():
            ranges[name] = range(at, at + n)
            at += n
        return cls(ranges)

    def counts(self) -> Dict[str, int]:
        return {name: len(r) for name, r in self.ranges.items()}

    def seed(self, split: str, variation: int) -> int:
        return self.ranges[split][variation]


def default_won(reward: float, terminated: bool, info: Dict[str, Any]) -> bool:
    return bool(terminated) and reward > 0


@dataclass
class GymTask:
    """One stepwire task: a registered Gymnasium environment id and how to play it as text."""

    id: str
    env_id: str
    description: Optional[str] = None
    make_kwargs: Dict[str, Any] = field(default_factory=dict)
    labels: Optional[Sequence[str]] = None  # one per Discrete action index
    max_score: Optional[float] = None
    won: WonRule = default_won
    render: Optional[Renderer] = None  # this task's renderer instead of the environment's
    describe: Optional[Describer] = None


def default_render(env: Any, obs: Any, info: Dict[str, Any]) -> Union[str, Observation]:
    """The observation when it is text (or a dict with a ``text`` entry), else the ``ansi``
    rendering without its colour codes."""
    if isinstance(obs, str):
        return obs
    if isinstance(obs, Mapping) and isinstance(obs.get("text"), str):
        return obs["text"]
    if getattr(env, "render_mode", None) == "ansi":
        return _ANSI.sub("", str(env.render())).strip("\n")
    raise EnvironmentCrashed(
        f"{type(obs).__name__} observations are not text: give GymnasiumEnvironment a `render` function "
        "or make the environment with render_mode='ansi'")


def default_describe(env: Any, obs: Any, info: Dict[str, Any]) -> str:
    if isinstance(obs, Mapping) and isinstance(obs.get("mission"), str):
        return obs["mission"]
    return ""


def value_iteration_expert(gamma: float = 0.99, sweeps: int = 1000,
                           subtask: Optional[Callable[[Any], Optional[str]]] = None) -> ExpertFactory:
    """An expert for a tabular environment with a transition table ``env.unwrapped.P``
    (``P[s][a] = [(probability, next state, reward, terminated), ...]``) and its state in
    ``env.unwrapped.s``: the greedy action of the optimal values, found by value iteration once
    per table (ties go to the lowest action index). ``subtask(env)`` names the subtask of the
    current state, when given."""
    solved: Dict[int, List[int]] = {}

    def solve(P) -> List[int]:
        n = len(P)
        values = [0.0] * n

        def q(s: int, a: int) -> float:
            return sum(p * (r + (0.0 if done else gamma * values[s2])) for p, s2, r, done in P[s][a])

        for _ in range(sweeps):
            delta = 0.0
            for s in range(n):
                best = max(q(s, a) for a in range(len(P[s])))
                delta, values[s] = max(delta, abs(best - values[s])), best
            if delta < 1e-9:
                break
        return [max(range(len(P[s])), key=lambda a: (q(s, a), -a)) for s in range(n)]

    def factory(env) -> Advisor:
        raw = env.unwrapped
        if not hasattr(raw, "P") or not hasattr(raw, "s"):
            raise EnvironmentCrashed(f"{type(raw).__name__} has no transition table `P` for value iteration")
        if id(raw.P) not in solved:  # the bridge keeps its environments, so ids are not reused
            solved[id(raw.P)] = solve(raw.P)
        policy = solved[id(raw.P)]
        return lambda last_action: (policy[int(raw.s)], subtask(env) if subtask else None)

    return factory


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


class GymnasiumEnvironment(Environment):
    """A stepwire environment over Gymnasium environments (see the module's docstring)."""

    seeded_reset = True
    admissible_actions_supported = True

    def __init__(
        self,
        name: str,
        tasks: Sequence[GymTask],
        splits: SeedSplits,
        render: Renderer = default_render,
        describe: Describer = default_describe,
        expert: Optional[ExpertFactory] = None,
        version: Optional[str] = None,
    ) -> None:
        self.gym = load("gymnasium")
        if not tasks:
            raise ValueError("GymnasiumEnvironment needs at least one task")
        ids = [t.id for t in tasks]
        if len(set(ids)) != len(ids):
            raise ValueError(f"task ids must be unique: {ids}")
        self.name = name
        self.version = version or f"gymnasium {self.gym.__version__}"
        self._tasks = {t.id: t for t in tasks}
        self._splits = splits
        self.default_split = next(iter(splits.ranges))
        self._render, self._describe, self._expert = render, describe, expert
        self.expert_action_supported = expert is not None
        self._envs: Dict[str, Any] = {}
        self._task: Optional[GymTask] = None
        self._env = None
        self._info: Dict[str, Any] = {}
        self._score = 0.0
        self._advisor: Optional[Advisor] = None
        self._advice: Any = _UNSET
        self._last: Optional[int] = None

    # -- the environment plane ----------------------------------------------------------------

    def tasks(self) -> List[Task]:
        return [Task(t.id, self._splits.counts(), t.description or t.env_id) for t in self._tasks.values()]

    def reset(self, task, split, variation, seed, options) -> Reset:
        t = self._tasks[task]
        env = self._make(t)
        self._env = None  # no episode until this reset succeeds
        try:
            obs, info = env.reset(seed=self._splits.seed(split, variation))
        except Exception as e:
            raise EnvironmentCrashed(f"{t.env_id} reset failed: {type(e).__name__}: {e}") from None
        self._task, self._env, self._info, self._score = t, env, dict(info or {}), 0.0
        self._advice, self._last, self._advisor = _UNSET, None, None
        if self._expert is not None:
            try:
                self._advisor = self._expert(env)
            except Exception as e:  # the episode is playable without its expert
                self._advice = f"the expert could not start: {type(e).__name__}: {e}"
        describe = t.describe or self._describe
        return Reset(self._text(obs), describe(env, obs, self._info) or t.description or t.env_id,
                     max_score=t.max_score, meta={"envId": t.env_id, "gymSeed": self._splits.seed(split, variation)})

    def step(self, action: str) -> Step:
        env, t = self._playing()
        a = self._parse(action)
        if self._advice is _UNSET and self._advisor is not None:
            self._advise()  # consulted once per state, even when nobody asked
        try:
            obs, reward, terminated, truncated, info = env.step(a)
        except Exception as e:
            raise EnvironmentCrashed(f"{t.env_id} step failed: {type(e).__name__}: {e}") from None
        reward = float(reward)
        self._info, self._score = dict(info or {}), self._score + reward
        if not isinstance(self._advice, str):  # an expert that gave up stays silent
            self._advice = _UNSET
        self._last = a if isinstance(a, int) else None
        won = bool(t.won(reward, bool(terminated), self._info))
        done = bool(terminated or truncated)
        return Step(self._text(obs), reward=reward, score=self._score, done=done, won=won,
                    truncated=bool(truncated) and not terminated)

    def admissible_actions(self) -> List[str]:
        self._playing()
        listed = self._info.get("admissible_actions")
        if isinstance(listed, (list, tuple)):
            return [str(a) for a in listed]
        labels = list(self._labels())
        mask = self._info.get("action_mask")
        if mask is not None and len(mask) == len(labels):  # e.g. Taxi's legal moves
            return [label for label, ok in zip(labels, mask) if ok]
        return labels

    def expert_action(self) -> Expert:
        self._playing()
        if self._expert is None:
            raise NoExpert(f"{self.name} has no expert")
        advice = self._advise()
        if isinstance(advice, str):
            raise NoExpert(advice)
        return advice

    def close(self) -> None:
        for env in self._envs.values():
            try:
                env.close()
            except Exception:
                pass
        self._envs.clear()
        self._env = None

    # -- helpers -------------------------------------------------------------------------------

    def _text(self, obs) -> Union[str, Observation]:
        return (self._task.render or self._render)(self._env, obs, self._info)

    def _make(self, t: GymTask):
        if t.id not in self._envs:
            try:
                self._envs[t.id] = self.gym.make(t.env_id, **t.make_kwargs)
            except Exception as e:
                raise EnvironmentCrashed(f"gymnasium.make({t.env_id!r}) failed: {type(e).__name__}: {e}") from None
        return self._envs[t.id]

    def _playing(self):
        if self._env is None or self._task is None:
            raise NoEpisode(f"no {self.name} episode: call env/reset first")
        return self._env, self._task

    def _labels(self) -> Sequence[str]:
        space = self._env.action_space
        n = getattr(space, "n", None)
        if n is None:
            return []
        labels = self._task.labels or [str(i) for i in range(int(n))]
        if len(labels) != int(n):
            raise EnvironmentCrashed(f"task {self._task.id!r} has {len(labels)} labels for {n} actions")
        return labels

    def _parse(self, action: str):
        space = self._env.action_space
        if type(space).__name__ == "Text":
            if not space.contains(action):
                raise InvalidAction(f"{action!r} is not in the action space {space}")
            return action
        labels = self._labels()
        if not labels:
            raise InvalidAction(f"{type(space).__name__} action spaces cannot be played as text")
        wanted = _norm(action)
        for i, label in enumerate(labels):
            if _norm(label) == wanted:
                return int(getattr(space, "start", 0)) + i
        raise InvalidAction(f"unknown action {action!r}; the actions are: {', '.join(labels)}",
                            data={"actions": list(labels)})

    def _advise(self) -> Union[Expert, str]:
        """The advice for this state, computed once; a str says why there is none (an expert
        that failed gives no more advice this episode, and never fails the agent's step)."""
        if self._advice is _UNSET:
            try:
                raw = self._advisor(self._last)
                action, subtask = raw if isinstance(raw, tuple) else (raw, None)
                self._advice = Expert(self._label_of(action), subtask)
            except Exception as e:
                self._advice = f"the expert gave up: {type(e).__name__}: {e}"
        return self._advice

    def _label_of(self, action: Any) -> Optional[str]:
        if action is None or isinstance(action, str):
            return action
        labels = self._labels()
        i = int(action) - int(getattr(self._env.action_space, "start", 0))
        return labels[i] if 0 <= i < len(labels) else str(action)
