"""$/cancelRequest: the targeted request is answered exactly once."""
import time

from conftest import frame, note, req


def cancel(b, rid):
    b.send(frame(note("$/cancelRequest", {"id": rid})))


def wait_started(b):
    msg = b.recv()
    assert msg["method"] == "$/logMessage" and msg["params"]["message"] == "started", msg


def test_cancel_while_running_answers_32800(testenv):
    testenv.result(1, "env/reset", {"task": "count"})
    testenv.send(req(2, "env/step", {"action": "announced-sleep:0.5"}))
    wait_started(testenv)
    t0 = time.time()
    cancel(testenv, 2)
    msg = testenv.recv()
    assert msg["id"] == 2 and msg["error"]["code"] == -32800
    assert msg["error"]["data"] == {"completed": True}  # the step did happen
    assert time.time() - t0 > 0.1  # answered when the author call returned
    testenv.no_message()
    # the episode continued from the state after the cancelled step
    text = testenv.result(3, "env/step", {"action": "history"})["observation"]["text"]
    assert text == "announced-sleep:0.5,history"


def test_cancel_queued_request_never_runs(testenv):
    testenv.result(1, "env/reset", {"task": "count"})
    testenv.send(frame(req(2, "env/step", {"action": "sleep:0.5"})) + frame(req(3, "env/step", {"action": "queued"})))
    cancel(testenv, 3)
    first, second = testenv.recv(), testenv.recv()
    assert first["id"] == 2 and "result" in first
    assert second["id"] == 3 and second["error"]["code"] == -32800
    assert second["error"]["data"] == {"completed": False}
    assert testenv.result(4, "env/step", {"action": "history"})["observation"]["text"] == "sleep:0.5,history"


def test_cooperative_cancellation_stops_early(testenv):
    testenv.result(1, "env/reset", {"task": "count"})
    testenv.send(req("slow", "env/step", {"action": "coop-sleep:5"}))
    wait_started(testenv)
    t0 = time.time()
    cancel(testenv, "slow")
    msg = testenv.recv()
    assert msg["id"] == "slow" and msg["error"]["code"] == -32800
    assert time.time() - t0 < 2


def test_cancel_after_the_answer_is_ignored(testenv):
    testenv.result(1, "env/reset", {"task": "count"})
    testenv.result(2, "env/step", {"action": "a"})
    cancel(testenv, 2)
    cancel(testenv, 12345)
    cancel(testenv, "nope")
    testenv.no_message()
    testenv.result(3, "env/step", {"action": "b"})


def test_cancel_that_races_a_fast_request_gets_exactly_one_answer(testenv):
    testenv.result(1, "env/reset", {"task": "count", "variation": 0})
    for rid in range(10, 40):
        testenv.send(frame(req(rid, "env/tasks")) + frame(note("$/cancelRequest", {"id": rid})))
    seen = []
    for _ in range(10, 40):
        msg = testenv.recv()
        assert ("result" in msg) != ("error" in msg)
        if "error" in msg:
            assert msg["error"]["code"] == -32800
        seen.append(msg["id"])
    assert sorted(seen) == list(range(10, 40))
    testenv.no_message()


def test_lifecycle_requests_are_not_cancellable(testenv):
    testenv.send(frame(req(5, "shutdown")) + frame(note("$/cancelRequest", {"id": 5})))
    msg = testenv.recv()
    assert msg["id"] == 5 and msg["result"] is None


def test_other_requests_are_read_while_a_step_runs(testenv):
    # the main thread keeps reading: a bad frame during a long step is answered at once
    testenv.result(1, "env/reset", {"task": "count"})
    testenv.send(req(2, "env/step", {"action": "sleep:1"}))
    time.sleep(0.1)
    t0 = time.time()
    testenv.send(frame(b"{oops"))
    msg = testenv.recv()
    assert msg["id"] is None and msg["error"]["code"] == -32700
    assert time.time() - t0 < 0.8
    assert testenv.recv()["id"] == 2
