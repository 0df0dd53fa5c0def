"""Fixtures: the real `stepwire` binary (`$STEPWIRE_BIN`, else the checkout's
`target/debug/stepwire`), a real network server, the schemas, and a log of the wire."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = ROOT / "schemas"
CONTRACT = json.loads((SCHEMAS / "protocol.json").read_text())
METHODS = {m["name"]: m for m in CONTRACT["methods"]}


@pytest.fixture(scope="session")
def binary() -> str:
    path = os.environ.get("STEPWIRE_BIN") or str(ROOT / "target" / "debug" / "stepwire")
    assert Path(path).is_file(), f"no stepwire binary at {path}: `cargo build -p stepwire-runtime` or set STEPWIRE_BIN"
    os.environ["STEPWIRE_BIN"] = path  # what the library (and the README snippet) look for
    return path


def policy(name: str) -> str:
    return str(ROOT / "models" / name)


def validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    return jsonschema.Draft202012Validator(schema)


def validate(name: str, value: Any) -> None:
    validator(name).validate(value)


class Server:
    """`stepwire serve --listen 127.0.0.1:0` with a token, as a child of the test."""

    def __init__(self, binary: str, policy_arg: str, extra: List[str] = ()) -> None:
        self.token = secrets.token_hex(16)
        env = {**os.environ, "STEPWIRE_TOKEN": self.token}
        self.process = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--policy", policy_arg, *extra],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        deadline = time.monotonic() + 120
        self.addr = None
        assert self.process.stderr is not None
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            found = re.search(r"listening on ws://(\S+)", line)
            if found:
                self.addr = found.group(1)
                break
        assert self.addr, f"the server did not start (exit code {self.process.poll()})"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def tiny_server(binary: str) -> Iterator[Server]:
    server = Server(binary, policy("tiny-llama"), SLOW_ARGS)
    yield server
    server.stop()


class WireLog:
    """Every message the host sends and receives on stdio and WebSocket, in order."""

    def __init__(self) -> None:
        self.sent: List[Dict[str, Any]] = []
        self.received: List[Dict[str, Any]] = []

    def answer_to(self, request_id: int, timeout: float = 10.0) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.received:
                if message.get("id") == request_id and "method" not in message:
                    return message
            time.sleep(0.02)
        raise AssertionError(f"no answer to request {request_id} within {timeout} s")

    def check_schemas(self) -> int:
        """Validates every message against `jsonrpc.message.json` and its method's params and
        result schemas; returns how many params and results were checked."""
        envelope = validator("jsonrpc.message.json")
        methods_by_id = {}
        checked = 0
        # Params a test sent wrong on purpose: the server refused them too (-32602).
        refused = {m.get("id") for m in self.received if (m.get("error") or {}).get("code") == -32602}
        for message in self.sent:
            envelope.validate(message)
            info = METHODS[message["method"]]
            if "id" in message:
                methods_by_id[message["id"]] = info
            if info.get("paramsSchema") and "params" in message and message.get("id") not in refused:
                validate(info["paramsSchema"], message["params"])
                checked += 1
        for message in self.received:
            envelope.validate(message)
            info = methods_by_id.get(message.get("id"))
            if info and info.get("resultSchema") and "result" in message:
                validate(info["resultSchema"], message["result"])
                checked += 1
        return checked


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> WireLog:
    from stepwire_host import transports

    log = WireLog()
    for cls in (transports.ChildProcess, transports.WebSocketStream):
        send, receive = cls.send, cls.receive

        async def logged_send(self, message, _send=send):
            log.sent.append(json.loads(json.dumps(message)))
            await _send(self, message)

        async def logged_receive(self, _receive=receive):
            message = await _receive(self)
            if message is not None:
                log.received.append(message)
            return message

        monkeypatch.setattr(cls, "send", logged_send)
        monkeypatch.setattr(cls, "receive", logged_receive)
    return log


# Lets tiny-llama generate long enough for `slow_plan`.
SLOW_ARGS = ["--max-new-tokens", "900"]


def slow_plan() -> Dict[str, Any]:
    """An `agent/plan` the random-weight tiny-llama (served with `SLOW_ARGS`) works on for about
    2 s with a release binary, 10 s with a debug one (900 sampled tokens, no stop token met): long
    enough to cancel it, or to kill the server under it, well before it is done."""
    return {"task": "t", "observation": {"text": "hello " * 10},
            "sampling": {"temperature": 1.0, "seed": 3, "maxTokens": 900}}


def step_params(task: str = "open the box", text: str = "You see a box.") -> Dict[str, Any]:
    return {"state": {"task": task}, "observation": {"text": text}, "admissibleActions": ["open box", "look"]}


def record_lines(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pairs(lines: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    return [l for l in lines if l["kind"] == "transition"], [l for l in lines if l["kind"] == "episode"]
