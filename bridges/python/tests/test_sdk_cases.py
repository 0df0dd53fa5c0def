"""The shared executable specification (tests/sdk-cases/cases.json), run against the Python SDK:
the conformance bridge `counter` as a real process over real pipes. The Rust SDK runs the same
file (tests/tests/sdk_cases.rs); a case may not be skipped on either side."""

import json
import os
import queue
import subprocess
import sys
import threading

import pytest
from conftest import REPO

HERE = os.path.dirname(os.path.abspath(__file__))
CASES_DIR = os.path.join(REPO, "tests", "sdk-cases")
COUNTER = os.path.join(HERE, "envs", "counter.py")
ANY = "<any>"
WAIT_S = 10.0

with open(os.path.join(CASES_DIR, "cases.json"), encoding="utf-8") as f:
    CASES = json.load(f)["cases"]

INITIALIZE = [
    {"send": {"jsonrpc": "2.0", "id": "init", "method": "initialize",
              "params": {"protocolVersion": 1, "clientInfo": {"name": "sdk-cases"}}}},
    {"expect": {"id": "init", "result": ANY}},
    {"send": {"jsonrpc": "2.0", "method": "initialized", "params": {}}},
]


def matches(want, have) -> bool:
    if want == ANY:
        return True
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and matches(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(want) == len(have) and all(map(matches, want, have))
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have
    if isinstance(want, (int, float)) and isinstance(have, (int, float)):
        return float(want) == float(have)
    return want == have


def frame(message) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def read_frames(stream, out: "queue.Queue"):
    """Every frame the bridge writes, as parsed JSON; None at end of output."""
    while True:
        length = None
        while True:
            line = stream.readline()
            if not line:
                out.put(None)
                return
            line = line.strip()
            if not line:
                break
            name, _, value = line.decode("ascii").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        body = stream.read(length)
        out.put(json.loads(body))


class Bridge:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, COUNTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env={**os.environ, "STEPWIRE_LOG": "error"})
        self.frames: "queue.Queue" = queue.Queue()
        threading.Thread(target=read_frames, args=(self.proc.stdout, self.frames), daemon=True).start()

    def write(self, data: bytes):
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # a fatal case: the bridge has already gone

    def next_answer(self, timeout=WAIT_S):
        """The next response (notifications skipped); None at end of output."""
        while True:
            message = self.frames.get(timeout=timeout)
            if message is None or "method" not in message:
                return message


def run_case(case):
    bridge = Bridge()
    try:
        steps = ([] if case.get("initialize") is False else INITIALIZE) + case["steps"]
        for i, step in enumerate(steps):
            if "send" in step:
                bridge.write(frame(step["send"]))
            elif "sendRaw" in step:
                bridge.write(step["sendRaw"].encode())
            elif "sendHex" in step:
                bridge.write(bytes.fromhex(step["sendHex"]))
            else:
                have = bridge.next_answer()
                assert have is not None, f"step {i}: the bridge closed its output; expected {step['expect']}"
                assert matches(step["expect"], have), f"step {i}: expected {step['expect']}, got {have}"
        try:
            bridge.proc.stdin.close()
        except OSError:
            pass
        extra = bridge.next_answer()
        assert extra is None, f"an answer nobody expected: {extra}"
        assert bridge.proc.wait(timeout=WAIT_S) == case["exit"]
    finally:
        if bridge.proc.poll() is None:
            bridge.proc.kill()
            bridge.proc.wait()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case):
    run_case(case)


def test_the_case_file_is_what_make_cases_writes():
    out = subprocess.run([sys.executable, os.path.join(CASES_DIR, "make_cases.py"), "--print"], capture_output=True,
                         text=True, check=True).stdout
    with open(os.path.join(CASES_DIR, "cases.json"), encoding="utf-8") as f:
        assert out == f.read(), "cases.json is stale: run python3 tests/sdk-cases/make_cases.py"
