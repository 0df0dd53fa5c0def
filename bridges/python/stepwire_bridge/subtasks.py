"""Naming the actions of an expert's plan by the subtask each serves (for `Expert(action, subtask)`)."""

from __future__ import annotations

from typing import List, Optional, Tuple


class SubtaskNames:
    """The subtask of every action of a plan, from the kind of each action, told in order:

        names = sw.SubtaskNames(len(plan))
        for i, action in enumerate(plan):
            if action == "look":
                names.look(i)
            elif action.startswith("go "):
                names.move(i, "go " + action[3:])
            else:
                names.act(i, action)
        subtasks = names.names()  # one a plan's action

    * `act(i, name)`: the action is a subtask of that name (it ends any run of moves);
    * `move(i, name)`: the action is a step of a run of moves, which is one subtask: the whole
      run, from its first step (or the looking actions just before it) to this one, takes the
      name of its latest step (say, the room it ends in); `run` is that name while a run goes on;
    * `look(i)`: the action only looks: it joins the subtask that follows it (the one before it
      at the end of the plan); looking does not end a run;
    * `answer(i)`: the action answers the one before it (a prompt's number) and joins its
      subtask; one with no named action just before it waits like a looking action.

    An action told nothing of is named like a looking action at the end of the plan; a plan of
    looking actions only is "look around" (`empty`)."""

    def __init__(self, length: int) -> None:
        self._names: List[Optional[str]] = [None] * length
        self._pending: List[int] = []  # looking actions (and their answers) waiting for a subtask
        self._last = -1  # the index of the last action given a subtask
        self._run: Optional[Tuple[int, str]] = None  # the run of moves in progress: (first index, name)

    @property
    def run(self) -> Optional[str]:
        """The name of the run of moves in progress, None when there is none."""
        return self._run[1] if self._run is not None else None

    def look(self, i: int) -> None:
        self._pending.append(i)

    def answer(self, i: int) -> None:
        if self._pending or self._last < 0:
            self._pending.append(i)
        else:
            self._names[i] = self._names[self._last]
            self._last = i

    def act(self, i: int, name: str) -> None:
        self._run = None
        self._give(i, name)

    def move(self, i: int, name: str) -> None:
        start = self._run[0] if self._run is not None else (self._pending[0] if self._pending else i)
        self._run = (start, name)
        self._give(i, name)
        for k in range(start, i + 1):  # the whole run is named by its latest step
            self._names[k] = name

    def _give(self, i: int, name: str) -> None:
        for k in self._pending + [i]:
            self._names[k] = name
        self._pending.clear()
        self._last = i

    def names(self, empty: str = "look around") -> List[str]:
        tail = self._names[self._last] if self._last >= 0 else empty
        return [n or tail for n in self._names]
