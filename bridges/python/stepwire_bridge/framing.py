"""LSP base-protocol framing: ``Content-Length: N\\r\\n\\r\\n<N bytes of UTF-8 JSON>``.

Knows nothing about JSON-RPC. :class:`FrameReader` never raises on bad input: it returns a
:class:`Frame`, a :class:`FrameError` (with ``fatal`` telling whether the stream could be
resynchronised) or :data:`EOF`.
"""

from __future__ import annotations

import threading
from typing import BinaryIO, Optional, Union

DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024
MAX_HEADER_LINE = 8 * 1024
MAX_HEADER_BLOCK = 8 * 1024  # the whole header block, as in the Rust SDK
_SKIP_CHUNK = 64 * 1024


class Frame:
    __slots__ = ("body",)

    def __init__(self, body: bytes) -> None:
        self.body = body


class FrameError:
    """A frame that could not be read. ``fatal``: the length is unknown, the stream is lost.
    ``skip``: the body's length, still to be skipped with :meth:`FrameReader.skip` (after the
    error is answered, so that a peer waiting for the answer before sending the body is served)."""

    __slots__ = ("code", "message", "fatal", "data", "skip")

    def __init__(self, message: str, fatal: bool, data: Optional[dict] = None, skip: int = 0) -> None:
        self.code = -32600
        self.message = message
        self.fatal = fatal
        self.data = data
        self.skip = skip

    def __repr__(self) -> str:
        return f"FrameError({self.message!r}, fatal={self.fatal})"


class _Eof:
    def __repr__(self) -> str:
        return "EOF"


EOF = _Eof()

ReadResult = Union[Frame, FrameError, _Eof]


class FrameReader:
    def __init__(self, stream: BinaryIO, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._in = stream
        self.max_message_size = max_message_size

    def read(self) -> ReadResult:
        length: Optional[int] = None
        content_type: Optional[str] = None
        problem: Optional[str] = None  # a bad header seen after the length was known
        seen_any = False
        total = 0
        while True:
            line = self._in.readline(MAX_HEADER_LINE + 1)
            if not line:
                return EOF
            total += len(line)
            if not line.endswith(b"\n"):
                if len(line) > MAX_HEADER_LINE:
                    return FrameError(f"header line longer than {MAX_HEADER_LINE} bytes", fatal=True)
                return EOF  # the stream ended inside a header line
            if total > MAX_HEADER_BLOCK:
                return FrameError(f"header block longer than {MAX_HEADER_BLOCK} bytes", fatal=True)
            text = line[:-2] if line.endswith(b"\r\n") else line[:-1]
            if not text:
                if not seen_any:
                    continue  # tolerate blank lines between frames
                break
            seen_any = True
            try:
                header = text.decode("ascii")
            except UnicodeDecodeError:
                if length is None:
                    return FrameError("header line is not ASCII", fatal=True)
                problem = problem or "header line is not ASCII"
                continue
            name, sep, value = header.partition(":")
            name = name.strip().lower()
            value = value.strip()
            if not sep or not name:
                if length is None:
                    return FrameError(f"malformed header line {header[:80]!r}", fatal=True)
                problem = problem or f"malformed header line {header[:80]!r}"
                continue
            if name == "content-length":
                if not value.isdigit() or len(value) > 19:
                    return FrameError(f"invalid Content-Length {value[:40]!r}", fatal=True)
                n = int(value)
                if length is not None and n != length:
                    return FrameError("conflicting Content-Length headers", fatal=True)
                length = n
            elif name == "content-type":
                content_type = value
            # other headers are ignored
        if length is None:
            return FrameError("missing Content-Length header", fatal=True)
        if length > self.max_message_size:
            return FrameError(
                f"message of {length} bytes exceeds the limit of {self.max_message_size} bytes",
                fatal=False,
                data={"length": length, "limit": self.max_message_size},
                skip=length,
            )
        if problem is None and content_type is not None:
            charset = _charset(content_type)
            if charset is not None and charset not in ("utf-8", "utf8"):
                problem = f"unsupported charset {charset!r} (only utf-8)"
        if problem is not None:
            return FrameError(problem, fatal=False, skip=length)
        body = self._read_exact(length)
        if body is None:
            return EOF
        return Frame(body)

    def _read_exact(self, n: int) -> Optional[bytes]:
        chunks = []
        left = n
        while left > 0:
            chunk = self._in.read(left)
            if not chunk:
                return None
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def skip(self, n: int) -> bool:
        """Discard ``n`` bytes; False when the stream ended first."""
        left = n
        while left > 0:
            chunk = self._in.read(min(left, _SKIP_CHUNK))
            if not chunk:
                return False
            left -= len(chunk)
        return True


def _charset(content_type: str) -> Optional[str]:
    for param in content_type.split(";")[1:]:
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset":
            return val.strip().strip('"').lower()
    return None


class FrameWriter:
    """Writes whole frames; safe to share between threads."""

    def __init__(self, stream: BinaryIO) -> None:
        self._out = stream
        self._lock = threading.Lock()

    def write(self, body: bytes) -> None:
        header = b"Content-Length: %d\r\n\r\n" % len(body)
        with self._lock:
            self._out.write(header + body)
            self._out.flush()
