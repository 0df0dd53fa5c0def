"""The host's side of one JSON-RPC connection over a message stream (stdio or WebSocket):
request ids, answers matched to callers, cancellation, and the server's notifications.

A caller that is cancelled (or times out) while waiting sends `$/cancelRequest` for its request
and gets `asyncio.CancelledError` (or `TimeoutError`) at once; the server's late answer, -32800
or a result, is dropped. When the connection ends every waiting caller gets `ConnectionClosed`
(or `ServerExited`), so a dead server never leaves a caller hanging.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any, Callable, Dict, Optional, Protocol

from .errors import ConnectionClosed, ProtocolError

log = logging.getLogger("stepwire_host")
server_log = logging.getLogger("stepwire_host.server")

# `$/logMessage` levels -> logging levels.
LOG_LEVELS = {"error": logging.ERROR, "warn": logging.WARNING, "info": logging.INFO,
              "debug": logging.DEBUG, "trace": logging.DEBUG}


class MessageStream(Protocol):
    """What the peer needs from a transport."""

    async def send(self, message: Dict[str, Any]) -> None: ...

    async def receive(self) -> Optional[Dict[str, Any]]:
        """The next message; None when the stream ended."""

    async def close(self) -> None: ...

    async def closed_error(self, reason: str) -> ConnectionClosed:
        """The exception waiting callers get when the stream ended."""


NotificationHandler = Callable[[str, Any], None]


class Peer:
    def __init__(self, stream: MessageStream, on_notification: Optional[NotificationHandler] = None) -> None:
        self.stream = stream
        self.on_notification = on_notification
        self._ids = itertools.count(1)
        self._pending: Dict[int, asyncio.Future] = {}
        self._closed: Optional[ConnectionClosed] = None
        self._background: set = set()
        self._reader = asyncio.get_running_loop().create_task(self._read_loop())

    @property
    def closed(self) -> bool:
        return self._closed is not None

    async def request(self, method: str, params: Any = None, timeout: Optional[float] = None) -> Any:
        if self._closed is not None:
            raise self._closed
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        message: Dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            await self.stream.send(message)
            if timeout is None:
                return await future
            return await asyncio.wait_for(future, timeout)
        except (asyncio.CancelledError, TimeoutError):
            if self._closed is None:
                self._spawn(self._cancel(request_id))
            raise
        finally:
            self._pending.pop(request_id, None)

    async def notify(self, method: str, params: Any = None) -> None:
        if self._closed is not None:
            raise self._closed
        message: Dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self.stream.send(message)

    async def _cancel(self, request_id: int) -> None:
        log.debug("cancelling request %s", request_id)
        try:
            await self.notify("$/cancelRequest", {"id": request_id})
        except Exception as e:  # the connection is going anyway
            log.debug("could not send $/cancelRequest: %s", e)

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _read_loop(self) -> None:
        reason = "the server closed the connection"
        try:
            while True:
                message = await self.stream.receive()
                if message is None:
                    break
                self._dispatch(message)
        except asyncio.CancelledError:
            reason = "the connection was closed"
        except Exception as e:
            reason = f"the connection failed: {e}"
        self._fail_all(await self.stream.closed_error(reason))

    def _fail_all(self, error: ConnectionClosed) -> None:
        if self._closed is None:
            self._closed = error
        for future in self._pending.values():
            if not future.done():
                future.set_exception(self._closed)
        self._pending.clear()

    def _dispatch(self, message: Any) -> None:
        if not isinstance(message, dict):
            log.warning("ignored a message that is not an object: %r", message)
            return
        method = message.get("method")
        if method is None:
            future = self._pending.get(message.get("id"))  # type: ignore[arg-type]
            if future is None or future.done():
                log.debug("dropped an answer nobody waits for (id %r)", message.get("id"))
            elif "error" in message and isinstance(message["error"], dict):
                future.set_exception(ProtocolError.from_wire(message["error"]))
            else:
                future.set_result(message.get("result"))
            return
        if "id" in message:
            # The agent plane's server makes no requests of its host: say so.
            error = {"code": -32601, "message": f"this host answers no requests ({method})"}
            self._spawn(self.stream.send({"jsonrpc": "2.0", "id": message["id"], "error": error}))
            return
        params = message.get("params")
        if method == "$/logMessage" and isinstance(params, dict):
            server_log.log(LOG_LEVELS.get(params.get("level"), logging.INFO), "%s", params.get("message"))
        elif method == "$/progress":
            server_log.debug("progress: %s", params)
        if self.on_notification is not None:
            try:
                self.on_notification(method, params)
            except Exception:
                log.exception("the notification handler failed on %s", method)

    async def close(self) -> None:
        """Closes the stream and fails what is still waiting."""
        await self.stream.close()
        self._reader.cancel()
        try:
            await self._reader
        except asyncio.CancelledError:
            pass
        self._fail_all(ConnectionClosed("the connection was closed"))
