"""Exceptions a host sees.

`ProtocolError` is an error answer of the server: it carries the protocol's `code`, `message`
and `data`. Each known code has its own subclass in `stepwire_host.protocol` (generated from
`schemas/protocol.json`: `InvalidParamsError` for -32602, `MethodNotFoundError` for -32601,
`RequestCancelledError` for -32800, ...), so `except InvalidParamsError` works and an unknown code
still arrives as a plain `ProtocolError`. The other classes are about the connection itself.
"""

from __future__ import annotations

from typing import Any, Dict, Optional


class StepwireError(Exception):
    """Anything that went wrong talking to stepwire."""


class ProtocolError(StepwireError):
    """The server answered a request with a JSON-RPC error."""

    code: int = 0
    name: str = "unknown_error"

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (error {code}, {self.name})")
        self.code = code
        self.message = message
        self.data = data

    @classmethod
    def from_wire(cls, error: Dict[str, Any]) -> "ProtocolError":
        """The exception for a response's `error` object: the code's own class when known."""
        from .protocol import ERROR_CLASSES

        code = error.get("code")
        code = code if isinstance(code, int) else -32603
        klass = ERROR_CLASSES.get(code, ProtocolError)
        return klass(code, str(error.get("message", "")), error.get("data"))


class ConnectionClosed(StepwireError):
    """The connection to the server ended (closed by either side, or the server died); requests
    in flight and any later request fail with this."""


class ServerExited(ConnectionClosed):
    """The `stepwire serve --stdio` child process ended; `returncode` and the last lines of its
    stderr say why."""

    def __init__(self, message: str, returncode: Optional[int] = None, stderr_tail: str = "") -> None:
        detail = f"{message} (exit code {returncode})" if returncode is not None else message
        if stderr_tail:
            detail += f"; its last stderr lines:\n{stderr_tail}"
        super().__init__(detail)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class ServerStartError(StepwireError):
    """The server could not be started or reached (binary missing, port unreachable, refused token)."""


class HttpStatusError(StepwireError):
    """An HTTP answer other than a JSON-RPC message (401 for a missing or wrong token, 403 for a
    refused Host or Origin, 503 when the server is full)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body.strip() or '(no body)'}")
        self.status = status
        self.body = body
