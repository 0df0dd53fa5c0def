"""The entry point: serve an environment on this process's stdin/stdout, with the protocol's
streams guarded from stray output and logs on stderr."""

from __future__ import annotations

import io
import logging
import os
import sys
from typing import BinaryIO, Optional, Tuple

from .framing import DEFAULT_MAX_MESSAGE_SIZE
from .server import EnvSource, Server

logger = logging.getLogger("stepwire_bridge")

_guarded: Optional[Tuple[BinaryIO, BinaryIO]] = None


def guard_stdio() -> Tuple[BinaryIO, BinaryIO]:
    """Take the real stdin/stdout for the protocol and make fd 1 (and ``sys.stdout``) point to
    stderr and fd 0 to /dev/null, so stray ``print()``s, C libraries and child processes (a JVM)
    cannot corrupt or steal protocol bytes. Idempotent; returns ``(protocol_in, protocol_out)``.
    Call it first thing if your module prints at import time."""
    global _guarded
    if _guarded is not None:
        return _guarded
    try:
        sys.stdout.flush()
    except Exception:
        pass
    try:
        in_fd = os.dup(0)
        out_fd = os.dup(1)
        os.dup2(2, 1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        proto_in: BinaryIO = os.fdopen(in_fd, "rb")
        proto_out: BinaryIO = os.fdopen(out_fd, "wb")
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        proto_in = sys.stdin.buffer
        proto_out = sys.stdout.buffer
    sys.stdout = sys.stderr
    try:
        sys.stdin = open(os.devnull, "r")
    except OSError:
        pass
    _guarded = (proto_in, proto_out)
    return _guarded


def _setup_logging() -> None:
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[stepwire-bridge %(levelname)s] %(message)s"))
    logger.addHandler(handler)
    level = os.environ.get("STEPWIRE_BRIDGE_LOG", "info").upper()
    logger.setLevel(getattr(logging, level, logging.INFO) if level != "TRACE" else 5)
    logger.propagate = False


def serve(
    env: EnvSource,
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    stdin: Optional[BinaryIO] = None,
    stdout: Optional[BinaryIO] = None,
    exit: bool = True,
) -> int:
    """Serve ``env`` (an :class:`Environment`, or better its class / a factory) on stdin/stdout
    until ``exit`` or end of input, then end the process (code 0 after ``shutdown``, else 1).

    With ``stdin``/``stdout`` given (binary streams), the process's stdio is left alone; with
    ``exit=False`` the exit code is returned instead of ending the process.
    """
    _setup_logging()
    if stdin is None or stdout is None:
        proto_in, proto_out = guard_stdio()
        stdin = stdin or proto_in
        stdout = stdout or proto_out
    server = Server(env, stdin, stdout, max_message_size=max_message_size)
    code = server.run()
    if not exit:
        return code
    for stream in (sys.stderr, stdout):
        try:
            stream.flush()
        except Exception:
            pass
    # os._exit: an engine's non-daemon threads (py4j, a JVM bridge) must not keep us alive.
    os._exit(code)
