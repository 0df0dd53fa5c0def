"""Message streams to a server: a `stepwire serve --stdio` child process, or a WebSocket to
`stepwire serve --listen`. (HTTP, one POST per call, is `http.py`.)"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import json
import logging
import os
import signal
import subprocess
import weakref
from typing import Any, Dict, List, Optional, Sequence

from . import framing
from .errors import ConnectionClosed, ServerExited, ServerStartError

server_log = logging.getLogger("stepwire_host.server")
STDERR_TAIL_LINES = 20


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the host dies (Linux PR_SET_PDEATHSIG), so a
    host that crashes or is killed leaves no server behind."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    except Exception:  # not Linux: closing stdin still ends the server
        pass


def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill the child if it still runs (safe from a finalizer: no event loop needed)."""
    if process.returncode is None:
        try:
            os.kill(process.pid, signal.SIGKILL)
        except OSError:
            pass


def _stderr_level(line: str) -> int:
    """The level of one of stepwire's tracing lines ("2026-... WARN stepwire::...: ...")."""
    head = line[:64]
    for word, level in ((" ERROR ", logging.ERROR), (" WARN ", logging.WARNING),
                        (" DEBUG ", logging.DEBUG), (" TRACE ", logging.DEBUG)):
        if word in head:
            return level
    return logging.INFO


class ChildProcess:
    """A server child process speaking LSP-framed JSON-RPC on its stdin and stdout; its stderr
    goes to the `stepwire_host.server` logger (and the last lines into `ServerExited`)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stderr_tail: collections.deque = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._stderr_task = asyncio.get_running_loop().create_task(self._forward_stderr())
        # Garbage-collected without close(): the child goes too.
        self._finalizer = weakref.finalize(self, _kill, process)

    @classmethod
    async def start(cls, command: Sequence[str], env: Optional[Dict[str, str]] = None,
                    cwd: Optional[str] = None) -> "ChildProcess":
        try:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=env, cwd=cwd, preexec_fn=_die_with_parent, limit=framing.MAX_MESSAGE_BYTES)
        except OSError as e:
            raise ServerStartError(f"cannot start {command[0]}: {e}") from None
        return cls(process)

    async def _forward_stderr(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode("utf-8", errors="replace").rstrip()
            if line:
                self.stderr_tail.append(line)
                server_log.log(_stderr_level(line), "%s", line)

    async def send(self, message: Dict[str, Any]) -> None:
        stdin = self.process.stdin
        if stdin is None or stdin.is_closing() or self.process.returncode is not None:
            raise await self._exited("the server is not running")
        try:
            stdin.write(framing.encode(message))
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise await self._exited("the server stopped reading its input") from None

    async def receive(self) -> Optional[Dict[str, Any]]:
        assert self.process.stdout is not None
        return await framing.read_frame(self.process.stdout)

    async def _exited(self, reason: str) -> ServerExited:
        try:
            returncode = await asyncio.wait_for(self.process.wait(), 2)
            await asyncio.wait_for(self._stderr_task, 1)
        except (TimeoutError, asyncio.CancelledError):
            returncode = self.process.returncode
        return ServerExited(reason, returncode, "\n".join(self.stderr_tail))

    async def closed_error(self, reason: str) -> ConnectionClosed:
        if reason == "the server closed the connection":
            reason = "the stepwire server exited"
        return await self._exited(reason)

    async def wait_exit(self, timeout: float) -> Optional[int]:
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            return None

    async def close(self, grace: float = 5.0) -> None:
        """Close stdin (the server ends at EOF), wait a little, then kill."""
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        if await self.wait_exit(grace) is None:
            _kill(self.process)
            await self.process.wait()
        try:
            await asyncio.wait_for(self._stderr_task, 1)
        except (TimeoutError, asyncio.CancelledError):
            self._stderr_task.cancel()
        self._finalizer.detach()


class WebSocketStream:
    """One WebSocket to `stepwire serve --listen`: one JSON-RPC message per text message."""

    def __init__(self, connection: Any, url: str) -> None:
        self.connection = connection
        self.url = url

    @classmethod
    async def connect(cls, url: str, token: Optional[str] = None, open_timeout: float = 10.0) -> "WebSocketStream":
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus, WebSocketException

        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            connection = await connect(url, additional_headers=headers, open_timeout=open_timeout,
                                       max_size=framing.MAX_MESSAGE_BYTES, ping_interval=None)
        except InvalidStatus as e:
            from .errors import HttpStatusError

            body = e.response.body.decode("utf-8", errors="replace") if e.response.body else ""
            raise HttpStatusError(e.response.status_code, body) from None
        except (OSError, TimeoutError, WebSocketException) as e:
            raise ServerStartError(f"cannot open a WebSocket to {url}: {e}") from None
        return cls(connection, url)

    async def send(self, message: Dict[str, Any]) -> None:
        from websockets.exceptions import ConnectionClosed as WsClosed

        try:
            await self.connection.send(json.dumps(message, separators=(",", ":")))
        except WsClosed as e:
            raise ConnectionClosed(f"the WebSocket to {self.url} is closed: {e}") from None

    async def receive(self) -> Optional[Dict[str, Any]]:
        from websockets.exceptions import ConnectionClosed as WsClosed

        try:
            text = await self.connection.recv()
        except WsClosed:
            return None
        return json.loads(text)

    async def closed_error(self, reason: str) -> ConnectionClosed:
        return ConnectionClosed(f"{reason} ({self.url})")

    async def close(self) -> None:
        await self.connection.close()


def serve_command(binary: str, policy: str, extra: Sequence[str] = ()) -> List[str]:
    return [binary, "serve", "--stdio", "--policy", policy, *extra]
