"""`serve` with caller-given streams: no process, no stdio redirection (for embedding and tests)."""
import io
import json
import sys

from conftest import SDK_DIR, frame, note, req

sys.path.insert(0, str(SDK_DIR))
import stepwire_bridge as sw  # noqa: E402
from stepwire_bridge.framing import EOF, Frame, FrameError, FrameReader  # noqa: E402


class One(sw.Environment):
    name = "one"

    def tasks(self):
        return [sw.Task("t", {"train": 1})]

    def reset(self, task, split, variation, seed, options):
        return sw.Reset("hello", "say hi")

    def step(self, action):
        return sw.Step(f"you said {action}", done=True, won=action == "hi")


def parse_frames(data):
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        n = int(head.split(b": ")[1])
        out.append(json.loads(rest[:n]))
        data = rest[n:]
    return out


def test_serve_on_given_streams_with_an_instance():
    script = b"".join(
        frame(m)
        for m in [
            req(1, "initialize", {"protocolVersion": 1, "clientInfo": {"name": "t"}}),
            note("initialized"),
            req(2, "env/reset", {"task": "t"}),
            req(3, "env/step", {"action": "hi"}),
            req(4, "shutdown"),
            note("exit"),
        ]
    )
    out = io.BytesIO()
    code = sw.serve(One(), stdin=io.BytesIO(script), stdout=out, exit=False)
    assert code == 0
    msgs = parse_frames(out.getvalue())
    assert [m["id"] for m in msgs] == [1, 2, 3, 4]
    assert msgs[2]["result"]["won"] is True
    assert msgs[0]["result"]["serverInfo"] == {"name": "one", "version": sw.__version__}


def test_frame_reader_kinds():
    r = FrameReader(io.BytesIO(b"Content-Length: 2\r\n\r\n{}" + b"Content-Length: 9\r\n\r\n123456789" + b"X\r\n\r\n"), 4)
    first = r.read()
    assert isinstance(first, Frame) and first.body == b"{}"
    big = r.read()
    assert isinstance(big, FrameError) and not big.fatal and big.skip == 9
    assert r.skip(9)
    bad = r.read()
    assert isinstance(bad, FrameError) and bad.fatal
    assert FrameReader(io.BytesIO(b"")).read() is EOF
