"""Test harness: spawn a bridge as a real subprocess, speak raw bytes over real pipes, and
validate everything it sends against the generated JSON Schemas in `schemas/`."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
SDK_DIR = HERE.parent
REPO = SDK_DIR.parent.parent
SCHEMAS = REPO / "schemas"
EXAMPLE = REPO / "examples" / "python-bridge" / "bridge.py"
TEST_ENV = HERE / "envs" / "testenv.py"
TIMEOUT = 10.0
# The interpreter the bridges run under (e.g. an older Python to check the >= 3.9 promise);
# the tests themselves run under the current one.
BRIDGE_PYTHON = os.environ.get("STEPWIRE_BRIDGE_PYTHON", sys.executable)


# -- schemas ------------------------------------------------------------------------------------


class Schemas:
    """The generated schemas, one validator per file name (`env.step.result`, ...)."""

    def __init__(self, root: Path) -> None:
        from jsonschema import Draft202012Validator

        self.root = root
        self._validators: Dict[str, Any] = {}
        for path in sorted(root.glob("*.json")):
            if path.name == "protocol.json":  # the contract's summary, not a schema
                continue
            schema = json.loads(path.read_text(encoding="utf-8"))
            Draft202012Validator.check_schema(schema)
            self._validators[path.stem] = Draft202012Validator(schema)

    def names(self) -> List[str]:
        return sorted(self._validators)

    def validate(self, name: str, instance: Any) -> None:
        if name not in self._validators:
            pytest.fail(f"schema {name}.json not found in {self.root}")
        errors = sorted(self._validators[name].iter_errors(instance), key=lambda e: list(e.path))
        if errors:
            detail = "\n".join(f"  at {list(e.path)}: {e.message}" for e in errors[:5])
            pytest.fail(f"does not match {name}.json:\n{json.dumps(instance)[:500]}\n{detail}")


_schemas: Optional[Schemas] = None


def schemas() -> Schemas:
    global _schemas
    if _schemas is None:
        if not (SCHEMAS / "environment-plane.json").exists():
            pytest.fail(f"the generated schemas are missing from {SCHEMAS}")
        _schemas = Schemas(SCHEMAS)
    return _schemas


def schema_for_method(method: str) -> str:
    return method.lstrip("$/").replace("/", ".")


def validate_outgoing(msg: Any, method: Optional[str] = None) -> None:
    """Everything a bridge sends must be a valid environment-plane message; a result must match
    its method's result schema; known error data and notification params their schemas."""
    s = schemas()
    s.validate("jsonrpc.message", msg)
    s.validate("environment-plane", msg)
    if "method" in msg:  # a notification from the bridge
        assert "id" not in msg, f"the bridge sent a request: {msg}"
        name = schema_for_method(msg["method"]) + ".params"
        if name in s.names():
            s.validate(name, msg.get("params"))
        return
    if "result" in msg and method is not None:
        name = schema_for_method(method) + ".result"
        if name in s.names():
            s.validate(name, msg["result"])
        elif method == "shutdown":
            assert msg["result"] is None
    if "error" in msg and msg["error"]["code"] == -31005:
        s.validate("error.unsupportedVersion.data", msg["error"]["data"])


# -- framing helpers ----------------------------------------------------------------------------


def frame(obj: Any) -> bytes:
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def req(rid: Any, method: str, params: Any = None) -> dict:
    msg: dict = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def note(method: str, params: Any = None) -> dict:
    msg: dict = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    return msg


INIT_PARAMS = {"protocolVersion": 1, "clientInfo": {"name": "pytest", "version": "0"}}


class Bridge:
    """A bridge process. `send` writes raw bytes; `recv` returns the next parsed message,
    checking the exact framing of what the bridge wrote."""

    def __init__(self, script: Path, *args: str, env: Optional[dict] = None) -> None:
        full_env = dict(os.environ)
        full_env.pop("PYTHONPATH", None)
        full_env["STEPWIRE_BRIDGE_LOG"] = "debug"
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [BRIDGE_PYTHON, str(script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            bufsize=0,
        )
        self._msgs: "queue.Queue[Any]" = queue.Queue()
        self._stderr: List[bytes] = []
        self.methods: Dict[Any, str] = {}  # request id -> method, to pick result schemas
        self.frame_errors: List[str] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                c = out.read(1)
                if not c:
                    if header:
                        self.frame_errors.append(f"truncated header {header!r}")
                    self._msgs.put(None)
                    return
                header += c
            lines = header[:-4].split(b"\r\n")
            if len(lines) != 1 or not lines[0].startswith(b"Content-Length: "):
                self.frame_errors.append(f"unexpected header {header!r}")
                self._msgs.put(None)
                return
            n = int(lines[0][len(b"Content-Length: "):])
            body = b""
            while len(body) < n:
                chunk = out.read(n - len(body))
                if not chunk:
                    self.frame_errors.append("truncated body")
                    self._msgs.put(None)
                    return
                body += chunk
            self._msgs.put(json.loads(body.decode("utf-8")))

    def _read_stderr(self) -> None:
        err = self.proc.stderr
        assert err is not None
        for line in iter(err.readline, b""):
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return b"".join(self._stderr).decode("utf-8", "replace")

    def send(self, data: Any) -> None:
        """Bytes as they are; a dict as one frame (its id remembered for result validation)."""
        if isinstance(data, dict):
            if "id" in data and "method" in data:
                self.methods[json.dumps(data["id"])] = data["method"]
            data = frame(data)
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def recv(self, timeout: float = TIMEOUT) -> dict:
        try:
            msg = self._msgs.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no message from the bridge within {timeout}s; stderr:\n{self.stderr}")
        if msg is None:
            pytest.fail(f"the bridge closed stdout {self.frame_errors}; stderr:\n{self.stderr}")
        method = self.methods.get(json.dumps(msg.get("id"))) if "id" in msg else None
        validate_outgoing(msg, method)
        return msg

    def recv_eof(self, timeout: float = TIMEOUT) -> None:
        """The bridge closes stdout without sending anything more."""
        try:
            msg = self._msgs.get(timeout=timeout)
        except queue.Empty:
            pytest.fail("the bridge did not close stdout")
        assert msg is None, f"unexpected message {msg}"
        assert not self.frame_errors, self.frame_errors

    def no_message(self, wait: float = 0.3) -> None:
        time.sleep(wait)
        assert self._msgs.empty(), f"unexpected message {self._msgs.queue[0]}"

    def call(self, rid: Any, method: str, params: Any = None) -> dict:
        self.send(req(rid, method, params))
        msg = self.recv()
        assert msg.get("id") == rid, msg
        return msg

    def result(self, rid: Any, method: str, params: Any = None) -> Any:
        # what the tests send when they expect success is itself a valid message
        schemas().validate("environment-plane", req(rid, method, params))
        msg = self.call(rid, method, params)
        assert "error" not in msg, msg
        return msg["result"]

    def error(self, rid: Any, method: str, params: Any = None, code: Optional[int] = None) -> dict:
        msg = self.call(rid, method, params)
        assert "error" in msg, msg
        if code is not None:
            assert msg["error"]["code"] == code, msg
        return msg["error"]

    def initialize(self, capabilities: Optional[dict] = None) -> dict:
        params = dict(INIT_PARAMS)
        if capabilities is not None:
            params["capabilities"] = capabilities
        res = self.result(0, "initialize", params)
        self.send(note("initialized", {}))
        return res

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def wait(self, timeout: float = TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the bridge did not exit within {timeout}s; stderr:\n{self.stderr}")

    def shutdown_and_exit(self) -> int:
        assert self.result(999_999, "shutdown") is None
        self.send(note("exit"))
        return self.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def spawn():
    bridges: List[Bridge] = []

    def _spawn(script: Path = EXAMPLE, *args: str, env: Optional[dict] = None) -> Bridge:
        b = Bridge(script, *args, env=env)
        bridges.append(b)
        return b

    yield _spawn
    for b in bridges:
        b.kill()
        assert "Traceback (most recent call last)" not in b.stderr or "failed:" in b.stderr, b.stderr


@pytest.fixture
def garden(spawn) -> Bridge:
    b = spawn(EXAMPLE)
    b.initialize()
    return b


@pytest.fixture
def testenv(spawn) -> Bridge:
    b = spawn(TEST_ENV)
    b.initialize({"logMessages": True, "progress": True})
    return b
