"""What author code calls while a request runs: ``is_cancelled()``, ``log()`` and
``progress()``, answered by the server that is serving (or by stderr when none is)."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Optional

if TYPE_CHECKING:
    from .server import Server

logger = logging.getLogger("stepwire_bridge")

_active: Optional["Server"] = None


def activate(server: "Server") -> None:
    """Makes ``server`` the one the module-level helpers talk to (the process serves one)."""
    global _active
    _active = server


class Progress:
    """One ``$/progress`` token: ``report()`` between the begin and end the server sends."""

    def __init__(self, server: "Server", token: str) -> None:
        self._server = server
        self.token = token

    def report(self, message: Optional[str] = None, percentage: Optional[int] = None) -> None:
        value: dict = {"kind": "report"}
        if message is not None:
            value["message"] = str(message)
        if percentage is not None:
            value["percentage"] = max(0, min(100, int(percentage)))
        self._send(value)

    def _send(self, value: dict) -> None:
        self._server.send_progress(self.token, value)


def is_cancelled() -> bool:
    """True when the request the worker is running now was cancelled."""
    return _active is not None and _active.is_cancelled()


def log(message: str, level: str = "info", data: Any = None) -> None:
    """``$/logMessage`` to the client when it records them (``logMessages`` capability), else stderr."""
    if _active is not None:
        _active.log(message, level=level, data=data)
    else:
        logger.info("%s", message)


@contextmanager
def progress(title: str, message: Optional[str] = None) -> Iterator[Optional[Progress]]:
    """``$/progress`` begin/end around a block; ``.report(message, percentage)`` in between."""
    if _active is None:
        logger.info("%s", title)
        yield None
        return
    with _active.progress(title, message) as p:
        yield p
