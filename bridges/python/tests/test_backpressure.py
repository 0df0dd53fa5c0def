"""A peer that floods requests faster than the environment answers is no longer read: the SDK's
queue of requests waiting to run is bounded, so memory stays bounded and the peer's writes block.
Nothing is lost: every request written is answered once the environment catches up."""
import os
import time

from conftest import frame, req

FLOOD_CAP = 20_000


def flood(bridge, first_id: int) -> int:
    """Writes `env/tasks` requests until the pipe stays full for 0.5 s; returns how many."""
    fd = bridge.proc.stdin.fileno()
    os.set_blocking(fd, False)
    written, stalled_since = 0, None
    try:
        while written < FLOOD_CAP:
            try:
                os.write(fd, frame(req(first_id + written, "env/tasks")))  # < PIPE_BUF: all or nothing
                written, stalled_since = written + 1, None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 0.5:
                    break
                time.sleep(0.01)
    finally:
        os.set_blocking(fd, True)
    return written


def test_a_peer_that_floods_requests_is_no_longer_read(testenv):
    testenv.result(1, "env/reset", {"task": "count"})
    testenv.send(req(2, "env/step", {"action": "sleep:2"}))  # holds the worker
    written = flood(testenv, 100)
    assert written < 5_000, f"{written} requests were read while none could run"
    answered = set()
    while len(answered) < written + 1:
        msg = testenv.recv(timeout=30)
        if "id" in msg:
            assert "result" in msg, msg
            answered.add(msg["id"])
    assert answered == {2, *range(100, 100 + written)}
