"""The driver's side of the recording: appends whole episodes, each as one write, flushed and
fsynced, as `stepwire run` does, so the file is always whole episodes (a hard kill can leave at
most a torn last one, which `--resume` cuts). Never the same episode twice."""

from __future__ import annotations

import os


class Appender:
    def __init__(self, path: str, already: set[str]):
        self.path = path
        self.recorded = set(already)
        self.played: list[str] = []  # ids appended by this run, in order
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)

    def append(self, episode_id: str, lines: str) -> bool:
        """Appends an episode unless the recording has it already; says whether it did."""
        if episode_id in self.recorded:
            return False
        data = lines.encode("utf-8")
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        os.fsync(self._fd)
        self.recorded.add(episode_id)
        self.played.append(episode_id)
        return True

    def close(self) -> None:
        os.close(self._fd)
