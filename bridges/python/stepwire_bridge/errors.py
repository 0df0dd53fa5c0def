"""Error codes of the stepwire protocol and the exceptions authors raise.

Protocol faults (the message was wrong) use JSON-RPC/LSP codes in ``-32768..-32000``; environment
faults (the message was fine, the world refused) use stepwire's range ``-31999..-31000``.
Raise one of the classes below from ``reset``/``step``/... and the bridge answers with its code;
any other exception becomes ``-32603`` (internal error) and the bridge keeps running.
"""

from __future__ import annotations

from typing import Any, Optional

from .contract import error_code

# The codes come from protocol.json (generated from the Rust SDK's one table); the names are
# spelled out so that editors and type checkers see them.
PARSE_ERROR = error_code("parse_error")
INVALID_REQUEST = error_code("invalid_request")
METHOD_NOT_FOUND = error_code("method_not_found")
INVALID_PARAMS = error_code("invalid_params")
INTERNAL_ERROR = error_code("internal_error")
SERVER_NOT_INITIALIZED = error_code("server_not_initialized")
SHUTTING_DOWN = error_code("shutting_down")
REQUEST_CANCELLED = error_code("request_cancelled")

INVALID_ACTION = error_code("invalid_action")
ENVIRONMENT_CRASHED = error_code("environment_crashed")
UNKNOWN_TASK = error_code("unknown_task")
EPISODE_OVER = error_code("episode_over")
UNSUPPORTED_PROTOCOL_VERSION = error_code("unsupported_protocol_version")
NO_EPISODE = error_code("no_episode")
NO_EXPERT = error_code("no_expert")
POLICY_FAILED = error_code("policy_failed")
UNKNOWN_SESSION = error_code("unknown_session")
LIMIT_EXCEEDED = error_code("limit_exceeded")


class BridgeError(Exception):
    """An error answered to the client as a JSON-RPC error object ``{code, message, data?}``.

    Raise it directly for a code without its own class: ``BridgeError(-31012, "too long")``.
    """

    code: int = INTERNAL_ERROR

    def __init__(self, *args: Any, data: Any = None) -> None:
        # BridgeError(code, message) or Subclass(message)
        if type(self) is BridgeError and args and isinstance(args[0], int) and not isinstance(args[0], bool):
            self.code = args[0]
            args = args[1:]
        message = str(args[0]) if args else self._default_message()
        super().__init__(message)
        self.message = message
        self.data = data

    def _default_message(self) -> str:
        return type(self).__name__

    def to_error(self) -> dict:
        err: dict = {"code": int(self.code), "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


class InvalidAction(BridgeError):
    """-31001: the environment rejected the action (not parseable, or not valid here)."""

    code = INVALID_ACTION


class EnvironmentCrashed(BridgeError):
    """-31002: the engine died; the episode is lost (the next step answers -31006 until a reset)."""

    code = ENVIRONMENT_CRASHED


class UnknownTask(BridgeError):
    """-31003: no such task, split or variation; ``data`` says what exists."""

    code = UNKNOWN_TASK


class EpisodeOver(BridgeError):
    """-31004: the episode has ended; reset before stepping again. (The SDK raises it itself.)"""

    code = EPISODE_OVER


class NoEpisode(BridgeError):
    """-31006: no episode yet (or it was lost). (The SDK raises it itself.)"""

    code = NO_EPISODE


class NoExpert(BridgeError):
    """-31007: no expert for this environment or this state."""

    code = NO_EXPERT


class InvalidParams(BridgeError):
    """-32602: the params do not match the method (e.g. an option value of the wrong type)."""

    code = INVALID_PARAMS


class RequestCancelled(BridgeError):
    """-32800: raise it from long author code when ``is_cancelled()`` turns true."""

    code = REQUEST_CANCELLED

    def _default_message(self) -> str:
        return "request cancelled"


def error_object(code: int, message: str, data: Optional[Any] = None) -> dict:
    err: dict = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return err
