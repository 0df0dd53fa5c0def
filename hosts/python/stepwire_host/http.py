"""JSON-RPC over HTTP POST to `stepwire serve --listen`: one message per POST, nothing shared
between POSTs (the server keeps no session for HTTP). Standard library only.

Cancelling or timing out a call closes its connection, which cancels the work on the server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

from .errors import ConnectionClosed, HttpStatusError, ProtocolError, ServerStartError


class HttpChannel:
    def __init__(self, url: str, token: Optional[str] = None) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not an http:// URL: {url}")
        self.url = url
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.netloc = parts.netloc
        self.token = token
        self._ids = itertools.count(1)
        self.closed = False

    async def request(self, method: str, params: Any = None, timeout: Optional[float] = None) -> Any:
        message: Dict[str, Any] = {"jsonrpc": "2.0", "id": next(self._ids), "method": method}
        if params is not None:
            message["params"] = params
        status, body = await asyncio.wait_for(self._post(message), timeout)
        if status != 200:
            raise HttpStatusError(status, body.decode("utf-8", errors="replace"))
        answer = json.loads(body)
        if isinstance(answer.get("error"), dict):
            raise ProtocolError.from_wire(answer["error"])
        return answer.get("result")

    async def notify(self, method: str, params: Any = None) -> None:
        message: Dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        status, body = await self._post(message)
        if status not in (200, 204):
            raise HttpStatusError(status, body.decode("utf-8", errors="replace"))

    async def _post(self, message: Dict[str, Any]) -> "tuple[int, bytes]":
        if self.closed:
            raise ConnectionClosed("the HTTP client is closed")
        body = json.dumps(message, separators=(",", ":")).encode("utf-8")
        head = [f"POST {self.path} HTTP/1.1", f"Host: {self.netloc}", "Content-Type: application/json",
                f"Content-Length: {len(body)}", "Connection: close"]
        if self.token:
            head.append(f"Authorization: Bearer {self.token}")
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as e:
            raise ServerStartError(f"cannot reach {self.url}: {e}") from None
        try:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
            return await _read_response(reader)
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            raise ConnectionClosed(f"the server at {self.url} dropped the connection: {e}") from None
        finally:
            # Also on cancellation: the server sees the connection go and cancels the call.
            writer.close()

    async def close(self) -> None:
        self.closed = True


async def _read_response(reader: asyncio.StreamReader) -> "tuple[int, bytes]":
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionClosed("the server closed the connection without an answer")
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        raise ConnectionClosed(f"not an HTTP answer: {status_line!r}") from None
    length = None
    chunked = False
    while True:
        line = (await reader.readline()).rstrip(b"\r\n")
        if not line:
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        body = b""
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                break
            body += await reader.readexactly(size)
            await reader.readline()
        return status, body
    if length is not None:
        return status, await reader.readexactly(length)
    return status, await reader.read()
