"""Record lines as `stepwire run --record` writes them (`schemas/record.line.json`): the same
fields in the same order, one JSON object a line, an episode's lines written at once."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from .protocol import EpisodeKey, EpisodeSummary, HighState, LowState, Observation, RecordLine, RoleUsage


def observation_value(obs: Observation) -> Observation:
    """As the Rust type writes it: `parts` sorted by name, left out when empty."""
    out: Dict[str, Any] = {"text": obs["text"]}
    parts = obs.get("parts") or {}
    if parts:
        out["parts"] = {k: parts[k] for k in sorted(parts)}
    return out  # type: ignore[return-value]


def transition(key: EpisodeKey, step: int, level: Dict[str, Any], reward: float, done: bool,
               usage: RoleUsage, meta: Optional[Dict[str, Any]] = None) -> RecordLine:
    """A transition line; `level` holds `level`, `state`, and the level's own fields in order."""
    line: Dict[str, Any] = {"kind": "transition", "episode": key, "step": step, **level,
                            "reward": float(reward), "done": done, "usage": usage}
    if meta is not None:
        line["_meta"] = meta
    return line  # type: ignore[return-value]


def high(state: HighState, subtask: str, next_state: Optional[HighState]) -> Dict[str, Any]:
    return {"level": "high", "state": state, "subtask": subtask, "nextState": next_state}


def low(state: LowState, action: str, subtask_done: bool, next_state: LowState) -> Dict[str, Any]:
    return {"level": "low", "state": state, "action": action, "subtaskDone": subtask_done, "nextState": next_state}


def progress(state: Dict[str, Any], text: str) -> Dict[str, Any]:
    return {"level": "progress", "state": state, "progress": text}


def summary_line(summary: EpisodeSummary) -> RecordLine:
    return {"kind": "episode", **summary}  # type: ignore[return-value]


class RecordFile:
    """Appends whole episodes to a JSONL file: one write, flushed and fsynced, per episode."""

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        if self.path.parent != Path(""):
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write_episode(self, lines: List[RecordLine]) -> None:
        text = "".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n" for line in lines)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def read_records(path: Union[str, Path]) -> List[RecordLine]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
