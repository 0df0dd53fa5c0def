"""Property tests of framing + dispatch: the real `Server` over real OS pipes, fed what
`hypothesis` makes up. Whatever comes in, every request gets exactly one answer, a notification
or a response none, everything written is a whole frame of UTF-8 JSON, and the server never
hangs or dies: it closes cleanly at the end of its input."""
import json
import os
import queue
import sys
import threading
from typing import Any, List, Optional

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SDK_DIR, frame, note, req, validate_outgoing

sys.path.insert(0, str(SDK_DIR))
import stepwire_bridge as sw  # noqa: E402

WAIT = 10.0  # seconds; an answer later than this is a hang
PING = "fuzz-ping"  # the id of the request that follows every fuzzed message


class Echo(sw.Environment):
    name = "echo"

    def tasks(self):
        return [sw.Task("t", {"train": 2})]

    def reset(self, task, split, variation, seed, options):
        return sw.Reset("start", "echo your actions")

    def step(self, action):
        return sw.Step(action)


class Running:
    """A server thread reading one pipe and writing another; a thread parses what it writes."""

    def __init__(self) -> None:
        in_r, self._in_w = os.pipe()
        self._out_r, out_w = os.pipe()
        self._in = os.fdopen(self._in_w, "wb", buffering=0)
        self._server_streams = (os.fdopen(in_r, "rb"), os.fdopen(out_w, "wb"))
        server = sw.Server(Echo(), *self._server_streams)
        self.code: List[int] = []
        self.problems: List[str] = []
        self.messages: "queue.Queue[Optional[Any]]" = queue.Queue()
        self._server = threading.Thread(target=self._serve, args=(server,), daemon=True)
        self._server.start()
        threading.Thread(target=self._read, daemon=True).start()

    def _serve(self, server: "sw.Server") -> None:
        try:
            self.code.append(server.run())
        except BaseException as e:  # the property: this never happens
            self.problems.append(f"the server died: {type(e).__name__}: {e}")
        finally:
            for stream in self._server_streams:
                stream.close()

    def _read(self) -> None:
        out = os.fdopen(self._out_r, "rb")
        while True:
            header = out.readline()
            if not header:
                self.messages.put(None)
                return
            blank = out.readline()
            if not header.startswith(b"Content-Length: ") or blank != b"\r\n":
                self.problems.append(f"bad frame header {header!r} {blank!r}")
                self.messages.put(None)
                return
            n = int(header[len(b"Content-Length: ") :])
            body = out.read(n)
            try:
                msg = json.loads(body.decode("utf-8"))
                validate_outgoing(msg)
            except Exception as e:  # noqa: BLE001 - reported below
                self.problems.append(f"bad frame body {body[:200]!r}: {e}")
            self.messages.put(msg)

    def send(self, data: bytes) -> None:
        self._in.write(data)

    def recv(self) -> Any:
        try:
            msg = self.messages.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError(f"no answer within {WAIT}s: the server hangs") from None
        assert msg is not None, f"the server closed its output early; {self.problems}"
        return msg

    def close(self) -> int:
        """End of input: the server must finish cleanly."""
        self._in.close()
        self._server.join(WAIT)
        assert not self._server.is_alive(), "the server did not end at the end of its input"
        assert not self.problems, self.problems
        assert self.code, "no exit code"
        return self.code[0]

    def initialize(self) -> None:
        self.send(frame(req(0, "initialize", {"protocolVersion": 1})) + frame(note("initialized")))
        assert "result" in self.recv()


def answers_until_ping(s: Running) -> List[Any]:
    """Sends a ping, returns what came before its answer."""
    s.send(frame(req(PING, "env/tasks")))
    before = []
    while True:
        msg = s.recv()
        if msg.get("id") == PING:  # a result, or an error after a fuzzed `shutdown`
            return before
        before.append(msg)


def expected_answers(body: bytes) -> int:
    """JSON-RPC: a notification or a response from the client is not answered; all else once,
    a body that is not UTF-8 JSON text too."""
    try:
        msg = json.loads(body.decode("utf-8"))
        json.dumps(msg, ensure_ascii=False).encode("utf-8")  # no lone surrogate
    except (ValueError, RecursionError):
        return 1
    if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
        return 1
    if "method" not in msg:
        return 0 if ("result" in msg or "error" in msg) else 1
    params_ok = msg.get("params") is None or isinstance(msg["params"], (dict, list))
    is_notification = "id" not in msg and isinstance(msg["method"], str) and params_ok
    return 0 if is_notification else 1


# -- strategies -----------------------------------------------------------------------------------

# Any code point, surrogates often: alone, paired or in the wrong order once JSON-escaped.
# (`st.text` never draws surrogates, whatever its alphabet; a list of characters does.)
any_char = st.characters() | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
any_text = st.lists(any_char, max_size=12).map("".join)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | any_text
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4), max_leaves=12
)
methods = st.sampled_from(
    ["env/tasks", "env/reset", "env/step", "env/admissibleActions", "initialize", "shutdown", "$/cancelRequest",
     "initialized", "x"]
) | any_text


@st.composite
def ids(draw) -> Any:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.integers(min_value=-(2**64), max_value=2**64))
    return draw(any_text) if kind < 3 else draw(json_values)


@st.composite
def messages(draw) -> Any:
    """Mostly JSON-RPC-shaped objects, with any member missing or of any type; else any JSON."""
    if draw(st.integers(0, 19)) == 0:
        return draw(json_values)
    msg = {}
    version = draw(st.integers(0, 9))
    if version >= 2:
        msg["jsonrpc"] = "2.0"
    elif version == 1:
        msg["jsonrpc"] = draw(json_values)
    if draw(st.integers(0, 3)):
        msg["id"] = draw(ids())
    if draw(st.integers(0, 5)):
        msg["method"] = draw(methods)
    if draw(st.booleans()):
        params = st.fixed_dictionaries({}, optional={"task": any_text, "action": any_text, "id": ids(),
                                                     "protocolVersion": json_values})
        msg["params"] = draw(params | json_values)
    for extra in draw(st.lists(st.sampled_from(["result", "error", "_meta"]), max_size=2)):
        msg[extra] = draw(json_values)
    if msg.get("method") == "exit" or msg.get("id") == PING:
        msg.pop("method", None)  # `exit` ends the session; the ping's id is the test's
        msg.pop("id", None)
    return msg


def encoded(msg: Any, ascii_only: bool) -> bytes:
    # ensure_ascii writes lone surrogates as \udXXX escapes, as a fuzzer's JSON would;
    # without it, they cannot be UTF-8 and the bytes are escaped by surrogatepass (invalid UTF-8).
    return json.dumps(msg, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


# STEPWIRE_FUZZ_EXAMPLES=5000 for a longer hunt.
EXAMPLES = int(os.environ.get("STEPWIRE_FUZZ_EXAMPLES", "200"))
fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fuzz
@given(st.lists(st.tuples(messages(), st.booleans()), min_size=1, max_size=6))
def test_every_request_gets_exactly_one_answer(batch):
    s = Running()
    s.initialize()
    for msg, ascii_only in batch:
        body = encoded(msg, ascii_only)
        s.send(frame(body))
        got = answers_until_ping(s)
        assert len(got) == expected_answers(body), (body, got)
        if got and got[0]["id"] is not None:  # an id is only ever echoed
            assert got[0]["id"] == json.loads(body)["id"], (body, got)
    s.close()


@fuzz
@given(st.lists(st.binary(max_size=64) | st.builds(lambda b: frame(b), st.binary(max_size=64))
                | st.builds(lambda m, a: frame(encoded(m, a)), messages(), st.booleans()), max_size=8))
def test_any_bytes_end_in_a_clean_close(chunks):
    s = Running()
    s.send(b"".join(chunks))
    code = s.close()
    assert code in (0, 1)
    # everything written was a whole, valid frame (checked as read); nothing after the close
    while True:
        msg = s.messages.get(timeout=WAIT)
        if msg is None:
            break
