"""LSP base-protocol framing (`Content-Length: N\\r\\n\\r\\n` then N bytes of JSON), as
`stepwire serve --stdio` speaks it."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Optional

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class FramingError(Exception):
    """The byte stream is not a sequence of well-formed frames."""


def encode(message: Any) -> bytes:
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


async def read_frame(reader: asyncio.StreamReader) -> Optional[Any]:
    """The next message, or None at a clean end of stream (between frames)."""
    length = None
    saw_header = False
    while True:
        line = await reader.readline()
        if not line:
            if saw_header:
                raise FramingError("the stream ended inside a frame header")
            return None
        saw_header = True
        line = line.rstrip(b"\r\n")
        if not line:
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                raise FramingError(f"bad Content-Length header: {line!r}") from None
    if length is None or length < 0 or length > MAX_MESSAGE_BYTES:
        raise FramingError(f"a frame without a usable Content-Length (got {length})")
    try:
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise FramingError("the stream ended inside a frame body") from None
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise FramingError(f"a frame body that is not JSON: {e}") from None
