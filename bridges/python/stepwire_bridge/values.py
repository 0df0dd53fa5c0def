"""The small value types an environment author returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union


@dataclass
class Split:
    """One split of a task (``train``, ``dev``, ``test``...) and how many variations it holds."""

    name: str
    count: int


@dataclass
class Task:
    """A task ``env/reset`` accepts. ``splits`` may be a list of :class:`Split` or a mapping
    ``{"train": 10, "test": 5}``."""

    id: str
    splits: Union[Sequence[Split], Mapping[str, int]] = field(default_factory=list)
    description: Optional[str] = None

    def __post_init__(self) -> None:
        if isinstance(self.splits, Mapping):
            self.splits = [Split(str(k), v) for k, v in self.splits.items()]
        else:
            self.splits = list(self.splits)


@dataclass
class Observation:
    """What the agent sees: the main ``text`` plus named ``parts`` (e.g. ``inventory``), whose names
    the environment announces in ``observation_parts``."""

    text: str
    parts: Dict[str, str] = field(default_factory=dict)


ObservationLike = Union[Observation, str]


@dataclass
class Reset:
    """What ``reset`` returns. ``episode_id`` is assigned by the SDK when left ``None``."""

    observation: ObservationLike
    task_description: str
    max_score: Optional[float] = None
    episode_id: Optional[str] = None
    meta: Optional[Dict[str, Any]] = None


@dataclass
class Step:
    """What ``step`` returns. ``reward`` is this step's, ``score`` the episode's so far."""

    observation: ObservationLike
    reward: float = 0.0
    score: float = 0.0
    done: bool = False
    won: bool = False
    truncated: bool = False
    meta: Optional[Dict[str, Any]] = None


@dataclass
class Expert:
    """What ``expert_action`` may return instead of a plain action: the action and the subtask
    it serves (a short imperative phrase). Consecutive actions naming the same subtask form one
    subtask; a new name means the previous action was the last of its subtask."""

    action: Optional[str]
    subtask: Optional[str] = None


# ---------------------------------------------------------------------------------------------
# Conversion to wire JSON, with checks: a wrong type from author code is reported as a clear
# internal error instead of a malformed message on the wire.


class ResultError(TypeError):
    pass


def _number(value: Any, what: str) -> Union[int, float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResultError(f"{what} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ResultError(f"{what} must be finite, got {value!r}")
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ResultError(f"{what} must be a bool, got {type(value).__name__}")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ResultError(f"{what} must be a str, got {type(value).__name__}")
    return value


def _meta(value: Any, what: str) -> Optional[dict]:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ResultError(f"{what}.meta must be a dict, got {type(value).__name__}")
    return dict(value)


def observation_json(obs: Any, what: str) -> dict:
    if isinstance(obs, str):
        return {"text": obs}
    if not isinstance(obs, Observation):
        raise ResultError(f"{what} must be an Observation or a str, got {type(obs).__name__}")
    out: dict = {"text": _str(obs.text, f"{what}.text")}
    if obs.parts:
        if not isinstance(obs.parts, Mapping):
            raise ResultError(f"{what}.parts must be a dict of str to str")
        out["parts"] = {
            _str(k, f"{what}.parts key"): _str(v, f"{what}.parts[{k!r}]") for k, v in obs.parts.items()
        }
    return out


def task_json(task: Any) -> dict:
    if not isinstance(task, Task):
        raise ResultError(f"tasks() must return Task objects, got {type(task).__name__}")
    out: dict = {"id": _str(task.id, "Task.id")}
    if task.description is not None:
        out["description"] = _str(task.description, f"Task {task.id!r} description")
    splits: List[dict] = []
    for s in task.splits:
        if not isinstance(s, Split):
            raise ResultError(f"Task {task.id!r} splits must be Split objects")
        count = s.count
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ResultError(f"Task {task.id!r} split {s.name!r} count must be a non-negative int")
        splits.append({"name": _str(s.name, "Split.name"), "count": count})
    out["splits"] = splits
    return out


def reset_json(r: Any, episode_id: str, variation: int) -> dict:
    if not isinstance(r, Reset):
        raise ResultError(f"reset() must return a Reset, got {type(r).__name__}")
    out: dict = {
        "episodeId": episode_id,
        "taskDescription": _str(r.task_description, "Reset.task_description"),
        "observation": observation_json(r.observation, "Reset.observation"),
        "variation": variation,
    }
    if r.max_score is not None:
        out["maxScore"] = _number(r.max_score, "Reset.max_score")
    meta = _meta(r.meta, "Reset")
    if meta is not None:
        out["_meta"] = meta
    return out


def step_json(s: Any) -> dict:
    if not isinstance(s, Step):
        raise ResultError(f"step() must return a Step, got {type(s).__name__}")
    out: dict = {
        "observation": observation_json(s.observation, "Step.observation"),
        "reward": _number(s.reward, "Step.reward"),
        "score": _number(s.score, "Step.score"),
        "done": _bool(s.done, "Step.done"),
        "won": _bool(s.won, "Step.won"),
        "truncated": _bool(s.truncated, "Step.truncated"),
    }
    meta = _meta(s.meta, "Step")
    if meta is not None:
        out["_meta"] = meta
    return out


def actions_json(actions: Any) -> List[str]:
    if isinstance(actions, (str, bytes)) or not isinstance(actions, (list, tuple)):
        raise ResultError("admissible_actions() must return a list of str")
    return [_str(a, "admissible action") for a in actions]


def expert_json(advice: Any) -> dict:
    """``expert_action()``'s answer (a str, None, or :class:`Expert`) as the wire result."""
    if advice is None or isinstance(advice, str):
        return {"action": advice}
    if isinstance(advice, Expert):
        if advice.action is not None and not isinstance(advice.action, str):
            raise ResultError("Expert.action must be a str or None")
        out: Dict[str, Any] = {"action": advice.action}
        if advice.subtask is not None:
            if not isinstance(advice.subtask, str):
                raise ResultError("Expert.subtask must be a str or None")
            out["subtask"] = advice.subtask
        return out
    raise ResultError("expert_action() must return a str, None or stepwire_bridge.Expert")
