"""The class an environment author subclasses."""

from __future__ import annotations

import contextlib
from typing import Any, Dict, List, Optional, Sequence, Union

from . import author
from .values import Expert, Reset, Step, Task


class Environment:
    """Subclass it, set ``name``, write ``tasks``, ``reset`` and ``step``; then
    ``stepwire_bridge.serve(MyEnv)``.

    Capability attributes (announced in the ``initialize`` result):

    * ``name``: the environment's name, e.g. ``"scienceworld"``.
    * ``version``: shown as ``serverInfo.version``.
    * ``seeded_reset``: ``reset`` with the same task, split, variation and seed repeats exactly.
    * ``observation_parts``: names of the ``Observation.parts`` you fill.
    * ``reset_options``: option names ``reset`` understands; other names are refused (-32602).
    * ``default_split``: used when ``env/reset`` names no split (else the task's first split).

    ``env/admissibleActions`` and ``env/expertAction`` are announced exactly when the subclass
    overrides ``admissible_actions`` / ``expert_action`` (or sets ``admissible_actions_supported``
    / ``expert_action_supported``).

    One instance plays one episode at a time; all calls come from one worker thread, in order.
    """

    name: str = "environment"
    version: Optional[str] = None
    seeded_reset: bool = False
    observation_parts: Sequence[str] = ()
    reset_options: Sequence[str] = ()
    default_split: str = "train"
    admissible_actions_supported: Optional[bool] = None
    expert_action_supported: Optional[bool] = None


    # -- what an author writes -------------------------------------------------------------

    def tasks(self) -> List[Task]:
        raise NotImplementedError("Environment.tasks() must be implemented")

    def reset(
        self,
        task: str,
        split: str,
        variation: int,
        seed: Optional[int],
        options: Dict[str, Any],
    ) -> Reset:
        """Start an episode. ``task``, ``split`` and ``variation`` are already checked against
        ``tasks()`` (and ``variation`` picked from ``seed`` when the client named none)."""
        raise NotImplementedError("Environment.reset() must be implemented")

    def step(self, action: str) -> Step:
        """Play one action. Raise :class:`InvalidAction` when the action makes no sense here."""
        raise NotImplementedError("Environment.step() must be implemented")

    def admissible_actions(self) -> List[str]:
        """The actions valid in the current state (optional)."""
        raise NotImplementedError

    def expert_action(self) -> Union[str, Expert, None]:
        """The expert's next action, ``None`` when it has none (optional). Return
        :class:`Expert` (action, subtask) to name the subtask the action serves, so that expert
        replays record a real hierarchy."""
        raise NotImplementedError

    def close(self) -> None:
        """Called once on ``shutdown``: stop engines, JVMs, child processes."""

    # -- capabilities ----------------------------------------------------------------------

    def capabilities(self) -> Dict[str, Any]:
        """The ``capabilities.environment`` object of the ``initialize`` result."""
        return {
            "name": str(self.name),
            "admissibleActions": self._supports("admissible_actions"),
            "expertAction": self._supports("expert_action"),
            "seededReset": bool(self.seeded_reset),
            "observationParts": [str(p) for p in self.observation_parts],
            "resetOptions": [str(o) for o in self.reset_options],
        }

    def _supports(self, method: str) -> bool:
        flag = getattr(self, method + "_supported", None)
        if flag is not None:
            return bool(flag)
        return getattr(type(self), method) is not getattr(Environment, method)

    # -- helpers for author code -----------------------------------------------------------

    def log(self, message: str, level: str = "info", data: Any = None) -> None:
        """Send ``$/logMessage`` to the client when it records them, else write to stderr."""
        author.log(message, level=level, data=data)

    def is_cancelled(self) -> bool:
        """True when the request now running was cancelled; long code may stop early by raising
        :class:`RequestCancelled`."""
        return author.is_cancelled()

    def progress(self, title: str, message: Optional[str] = None) -> "contextlib.AbstractContextManager":
        """``with self.progress("Starting the JVM") as p: p.report("50%", 50)`` sends
        ``$/progress`` begin/report/end when the client shows progress."""
        return author.progress(title, message)

