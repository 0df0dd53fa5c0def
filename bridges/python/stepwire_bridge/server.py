"""The environment-plane server: JSON-RPC dispatch, lifecycle, cancellation, env/* methods.

Threads: the main thread reads frames and handles notifications at once (``$/cancelRequest``,
``exit``); requests go, in order, to one worker thread that runs them (author code is
synchronous and plays one episode at a time). So a cancel arriving while a long ``env/step``
runs is seen, and the step's answer becomes -32800.

Cancellation semantics (``$/cancelRequest {id}``):

* the targeted request is answered exactly once, whatever happens;
* still queued when the cancel arrives: it never runs, the answer is -32800
  (``data.completed = false``);
* running when the cancel arrives: author code keeps running (Python cannot stop it) unless it
  polls ``is_cancelled()`` and raises ``RequestCancelled``; when it returns, its result is dropped
  and the answer is -32800 with ``data.completed = true`` when the work did finish: the
  environment state has then moved on (after a cancelled ``env/step`` the episode continues from
  the state after that step, and ``done`` is tracked);
* already answered, or an unknown id: the cancel is ignored;
* ``initialize`` and ``shutdown`` are not cancellable (they are answered normally).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import threading
import traceback
from contextlib import contextmanager
from typing import Any, BinaryIO, Callable, Dict, Iterator, Optional, Tuple, Union

from . import author
from . import errors as E
from .environment import Environment
from .decoding import BodyError, decode_body
from .framing import DEFAULT_MAX_MESSAGE_SIZE, EOF, Frame, FrameError, FrameReader, FrameWriter
from .values import ResultError

from .contract import PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS, method
from .episodes import ENV_ADMISSIBLE, ENV_EXPERT, ENV_RESET, ENV_STEP, ENV_TASKS, EnvMethods
from .params import object_params, opt_uint
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_U32_MAX = 2**32 - 1
_LOG_LEVELS = ("error", "warn", "info", "debug", "trace")
INITIALIZE, INITIALIZED, SHUTDOWN, EXIT = method("initialize"), method("initialized"), method("shutdown"), method("exit")
CANCEL_REQUEST = method("$/cancelRequest")
_UNCANCELLABLE = (INITIALIZE, SHUTDOWN)

# Requests read but not yet run; the same bound as the Rust SDK's reply queue.
MAX_QUEUED_REQUESTS = 64

logger = logging.getLogger("stepwire_bridge")

_UNINITIALIZED, _INITIALIZED, _SHUTDOWN = "uninitialized", "initialized", "shutdown"

EnvSource = Union[Environment, Callable[[], Environment]]


def _sdk_version() -> str:
    from . import __version__

    return __version__


class _Call:
    __slots__ = ("id", "method", "params", "cancelled", "started")

    def __init__(self, rid: Union[int, str], method: str, params: Any) -> None:
        self.id = rid
        self.method = method
        self.params = params
        self.cancelled = False
        self.started = False


def _id_key(rid: Union[int, str]) -> Tuple[bool, Union[int, str]]:
    return (isinstance(rid, str), rid)


def _valid_id(rid: Any) -> bool:
    if isinstance(rid, str):
        return True
    return isinstance(rid, int) and not isinstance(rid, bool) and _I64_MIN <= rid <= _I64_MAX


def _encode(message: Any) -> bytes:
    """A message as UTF-8 JSON; raises TypeError or ValueError (UnicodeEncodeError included)."""
    return json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


# ----------------------------------------------------------------------------------------------


class Server:
    """Serves one :class:`Environment` over a pair of binary streams.

    ``env`` may be an instance or a zero-argument factory (a class): a factory is called when
    the first valid ``initialize`` arrives, after stdout is protected, so anything its
    constructor prints cannot corrupt the protocol, and a failure is answered to ``initialize``.
    """

    def __init__(
        self,
        env: EnvSource,
        stdin: BinaryIO,
        stdout: BinaryIO,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self._env_source = env
        self._env: Optional[Environment] = env if isinstance(env, Environment) else None
        self._reader = FrameReader(stdin, max_message_size)
        self._writer = FrameWriter(stdout)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._outstanding = 0
        self._pending: Dict[Tuple[bool, Union[int, str]], _Call] = {}
        # Bounded: when the worker falls behind, the reader waits, so a peer that floods
        # requests is no longer read (its writes block) instead of filling memory.
        self._queue: "queue.Queue[Optional[_Call]]" = queue.Queue(maxsize=MAX_QUEUED_REQUESTS)
        self._current: Optional[_Call] = None
        self._state = _UNINITIALIZED
        self._shutdown_seen = False
        self._client_caps: Dict[str, Any] = {}
        self._methods: Optional[EnvMethods] = None
        self._progress_tokens = 0
        self._broken = False

    # -- output -------------------------------------------------------------------------------

    def _send(self, message: dict) -> None:
        try:
            body = _encode(message)
        except (TypeError, ValueError) as e:  # UnicodeEncodeError is a ValueError
            logger.error("cannot send a message that is not JSON text (%s): %s", e, repr(message)[:200])
            return
        self._send_bytes(body)

    def _send_bytes(self, body: bytes) -> None:
        if self._broken:
            return
        try:
            self._writer.write(body)
        except (BrokenPipeError, OSError, ValueError) as e:
            self._broken = True
            logger.warning("stdout is closed (%s); the client is gone", e)

    def _send_error(self, rid: Any, code: int, message: str, data: Any = None) -> None:
        self._send({"jsonrpc": "2.0", "id": rid, "error": E.error_object(code, message, data)})

    def notify(self, method: str, params: Any) -> None:
        msg: dict = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        try:
            self._send(msg)
        except (TypeError, ValueError) as e:
            logger.error("could not send %s: %s", method, e)

    # -- main loop ----------------------------------------------------------------------------

    def run(self) -> int:
        """Read and answer until ``exit`` or end of input; returns the process exit code:
        0 when ``shutdown`` was answered before, 1 otherwise."""
        worker = threading.Thread(target=self._work, name="stepwire-bridge-worker", daemon=True)
        worker.start()
        author.activate(self)
        try:
            while True:
                item = self._reader.read()
                if item is EOF:
                    logger.debug("end of input")
                    break
                if isinstance(item, FrameError):
                    self._send_error(None, item.code, item.message, item.data)
                    if item.fatal:
                        logger.error("unreadable frame (%s); closing", item.message)
                        break
                    logger.warning("bad frame (%s); skipping its %d-byte body", item.message, item.skip)
                    if item.skip and not self._reader.skip(item.skip):
                        logger.debug("end of input inside a skipped body")
                        break
                    continue
                assert isinstance(item, Frame)
                code = self._on_body(item.body)
                if code is not None:
                    return code
            # End of input (or a lost stream): finish what was asked, then go.
            self._wait_idle(None)
            return 0 if self._state == _SHUTDOWN else 1
        finally:
            self._queue.put(None)

    def _wait_idle(self, timeout: Optional[float]) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._outstanding == 0, timeout)

    def _on_body(self, body: bytes) -> Optional[int]:
        try:
            msg = decode_body(body)
        except BodyError as e:
            self._send_error(None, E.PARSE_ERROR, str(e))
            return None
        if isinstance(msg, list):
            self._send_error(None, E.INVALID_REQUEST, "batches not supported")
            return None
        if not isinstance(msg, dict):
            self._send_error(None, E.INVALID_REQUEST, "a JSON-RPC message must be an object")
            return None
        rid = msg.get("id")
        reply_id = rid if _valid_id(rid) else None
        if msg.get("jsonrpc") != "2.0":
            self._send_error(reply_id, E.INVALID_REQUEST, 'not JSON-RPC 2.0: "jsonrpc" must be "2.0"')
            return None
        if "method" not in msg:
            if "result" in msg or "error" in msg:
                logger.debug("ignoring a response from the client (id %r)", rid)
                return None
            self._send_error(reply_id, E.INVALID_REQUEST, "a request needs a `method`")
            return None
        method = msg["method"]
        if not isinstance(method, str):
            self._send_error(reply_id, E.INVALID_REQUEST, "`method` must be a string")
            return None
        params = msg.get("params")
        if params is not None and not isinstance(params, (dict, list)):
            self._send_error(reply_id, E.INVALID_REQUEST, "`params` must be an object or an array")
            return None
        if "id" not in msg:
            return self._on_notification(method, params)
        if reply_id is None:
            self._send_error(None, E.INVALID_REQUEST, "`id` must be an integer or a string")
            return None
        call = _Call(rid, method, params)
        with self._lock:
            duplicate = _id_key(rid) in self._pending
            if not duplicate:
                self._pending[_id_key(rid)] = call
                self._outstanding += 1
        if duplicate:
            self._send_error(rid, E.INVALID_REQUEST, f"request id {json.dumps(rid)} is already in flight")
            return None
        if method == SHUTDOWN:
            self._shutdown_seen = True
        self._queue.put(call)
        return None

    def _on_notification(self, method: str, params: Any) -> Optional[int]:
        if method == EXIT:
            if self._shutdown_seen:
                # `shutdown` may still be queued behind work in flight: let it be answered.
                self._wait_idle(30.0)
            code = 0 if self._state == _SHUTDOWN else 1
            logger.debug("exit (code %d)", code)
            return code
        if method == CANCEL_REQUEST:
            rid = params.get("id") if isinstance(params, dict) else None
            if not _valid_id(rid):
                logger.warning("ignoring $/cancelRequest without a valid id")
                return None
            with self._lock:
                call = self._pending.get(_id_key(rid))
                if call is not None and call.method not in _UNCANCELLABLE:
                    call.cancelled = True
            return None
        if method == INITIALIZED:
            return None
        if not method.startswith("$/"):
            logger.info("ignoring unknown notification `%s`", method)
        return None

    # -- worker -------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            call = self._queue.get()
            if call is None:
                return
            try:
                self._run_call(call)
            except (SystemExit, KeyboardInterrupt) as e:
                # The environment asked to end the process: answer, then end it as asked.
                code = _exit_code(e)
                logger.error("%s: the environment raised %s; the bridge exits with code %d", call.method, type(e).__name__, code)
                self._send_error(call.id, E.ENVIRONMENT_CRASHED, f"the environment ended the bridge ({type(e).__name__}: {e}); exit code {code}")
                os._exit(code)  # a worker thread's sys.exit would end only the thread; the answer is flushed
            except BaseException as e:  # never let the worker die, nor leave the request unanswered
                logger.error("bridge bug while answering %s:\n%s", call.method, traceback.format_exc())
                self._send_error(call.id, E.INTERNAL_ERROR, f"bridge bug: {type(e).__name__}: {e}")
            finally:
                with self._idle:
                    self._outstanding -= 1
                    self._idle.notify_all()

    def _run_call(self, call: _Call) -> None:
        with self._lock:
            skip = call.cancelled
            if not skip:
                call.started = True
                self._current = call
        response: dict
        completed = False
        if skip:
            response = self._error_response(call.id, E.REQUEST_CANCELLED, "request cancelled", {"completed": False})
        else:
            try:
                result = self._dispatch(call)
                completed = True
                response = {"jsonrpc": "2.0", "id": call.id, "result": result}
            except E.BridgeError as e:
                response = {"jsonrpc": "2.0", "id": call.id, "error": e.to_error()}
            except ResultError as e:
                logger.error("%s: %s", call.method, e)
                response = self._error_response(call.id, E.INTERNAL_ERROR, f"the environment returned a bad value: {e}")
            except Exception as e:
                logger.error("%s failed:\n%s", call.method, traceback.format_exc())
                response = self._error_response(call.id, E.INTERNAL_ERROR, f"{type(e).__name__}: {e}")
        with self._lock:
            self._current = None
            if self._pending.get(_id_key(call.id)) is call:
                del self._pending[_id_key(call.id)]
            cancelled = call.cancelled
        if cancelled and not skip and "result" in response:
            response = self._error_response(call.id, E.REQUEST_CANCELLED, "request cancelled", {"completed": completed})
        try:
            body = _encode(response)
        except (TypeError, ValueError) as e:  # UnicodeEncodeError too: a lone surrogate in a string
            logger.error("%s: unserialisable answer: %s", call.method, e)
            error = self._error_response(call.id, E.INTERNAL_ERROR, f"the answer is not JSON text: {e}")
            body = json.dumps(error, separators=(",", ":")).encode("ascii")
        self._send_bytes(body)

    @staticmethod
    def _error_response(rid: Any, code: int, message: str, data: Any = None) -> dict:
        return {"jsonrpc": "2.0", "id": rid, "error": E.error_object(code, message, data)}

    # -- dispatch -----------------------------------------------------------------------------

    def _dispatch(self, call: _Call) -> Any:
        method, params = call.method, call.params
        if self._state == _SHUTDOWN:
            raise E.BridgeError(E.SHUTTING_DOWN, "the server is shutting down: only `exit` may follow `shutdown`")
        if method == INITIALIZE:
            return self._initialize(params)
        if self._state == _UNINITIALIZED:
            raise E.BridgeError(E.SERVER_NOT_INITIALIZED, "server not initialized: send `initialize` first")
        if method == SHUTDOWN:
            return self._shutdown()
        env, methods = self._env, self._methods
        assert env is not None and methods is not None
        handlers = {
            ENV_TASKS: methods.tasks,
            ENV_RESET: methods.reset,
            ENV_STEP: methods.step,
        }
        if env._supports("admissible_actions"):
            handlers[ENV_ADMISSIBLE] = methods.admissible
        if env._supports("expert_action"):
            handlers[ENV_EXPERT] = methods.expert
        handler = handlers.get(method)
        if handler is None:
            if method in (ENV_ADMISSIBLE, ENV_EXPERT):
                raise E.BridgeError(
                    E.METHOD_NOT_FOUND,
                    f"`{method}` is not supported by this environment (not announced in its capabilities)",
                )
            raise E.BridgeError(E.METHOD_NOT_FOUND, f"unknown method `{method}`")
        return handler(params)

    def _initialize(self, params: Any) -> dict:
        if self._state != _UNINITIALIZED:
            raise E.BridgeError(E.INVALID_REQUEST, "`initialize` was already answered")
        p = object_params(params, INITIALIZE, required=True)
        version = p.get("protocolVersion")
        if version is None:
            raise E.InvalidParams("missing `protocolVersion` (an integer)")
        version = opt_uint(p, "protocolVersion", _U32_MAX)
        info = p.get("clientInfo")
        if info is not None and (not isinstance(info, dict) or not isinstance(info.get("name"), str)):
            raise E.InvalidParams("`clientInfo` must be an object with a string `name`")
        caps = p.get("capabilities")
        if caps is not None and not isinstance(caps, dict):
            raise E.InvalidParams("`capabilities` must be an object")
        if version not in SUPPORTED_PROTOCOL_VERSIONS:
            raise E.BridgeError(
                E.UNSUPPORTED_PROTOCOL_VERSION,
                f"protocol version {version} is not supported; this peer speaks {SUPPORTED_PROTOCOL_VERSIONS}",
                data={"requested": version, "supported": list(SUPPORTED_PROTOCOL_VERSIONS)},
            )
        if self._env is None:
            env = self._env_source()  # type: ignore[operator]
            if not isinstance(env, Environment):
                raise TypeError(f"the environment factory returned {type(env).__name__}, not an Environment")
            self._env = env
        self._methods = EnvMethods(self._env)
        env_caps = self._env.capabilities()
        self._client_caps = dict(caps or {})
        self._state = _INITIALIZED
        if info is not None:
            logger.info("initialized by %s %s", info.get("name"), info.get("version") or "")
        server_info: dict = {"name": env_caps["name"]}
        server_info["version"] = str(self._env.version) if self._env.version is not None else _sdk_version()
        return {
            "protocolVersion": PROTOCOL_VERSION,
            "serverInfo": server_info,
            "capabilities": {"environment": env_caps},
            "_meta": {"sdk": "stepwire-bridge-python", "sdkVersion": _sdk_version()},
        }

    def _shutdown(self) -> None:
        self._state = _SHUTDOWN
        if self._env is not None:
            try:
                self._env.close()
            except Exception:
                logger.error("close() failed:\n%s", traceback.format_exc())
        return None

    # -- helpers for author code ----------------------------------------------------------------

    def is_cancelled(self) -> bool:
        with self._lock:
            return self._current is not None and self._current.cancelled

    def log(self, message: str, level: str = "info", data: Any = None) -> None:
        if level not in _LOG_LEVELS:
            level = "info"
        if self._client_accepts("logMessages"):
            params: dict = {"level": level, "message": str(message)}
            if data is not None:
                params["data"] = data
            self.notify("$/logMessage", params)
        else:
            py_level = {"error": 40, "warn": 30, "info": 20, "debug": 10, "trace": 5}[level]
            logger.log(py_level, "%s", message)

    def _client_accepts(self, capability: str) -> bool:
        """Whether the initialized client announced ``capability`` (``logMessages``, ``progress``)."""
        return self._state != _UNINITIALIZED and self._client_caps.get(capability) is True

    def send_progress(self, token: str, value: dict) -> None:
        """``$/progress`` when the client asked for it (``progress`` capability), else stderr."""
        if self._client_accepts("progress"):
            self.notify("$/progress", {"token": token, "value": value})
        else:
            logger.info("progress: %s", " ".join(str(v) for k, v in value.items() if k != "kind") or value["kind"])

    @contextmanager
    def progress(self, title: str, message: Optional[str] = None) -> Iterator["author.Progress"]:
        self._progress_tokens += 1
        p = author.Progress(self, f"stepwire-bridge-{self._progress_tokens}")
        p._send({"kind": "begin", "title": str(title), **({"message": message} if message else {})})
        try:
            yield p
        finally:
            p._send({"kind": "end"})


def _exit_code(e: BaseException) -> int:
    """The process exit code `sys.exit(x)` (or Ctrl-C) asks for."""
    if isinstance(e, KeyboardInterrupt):
        return 130
    code = getattr(e, "code", None)
    if code is None:
        return 0
    return code if isinstance(code, int) else 1
