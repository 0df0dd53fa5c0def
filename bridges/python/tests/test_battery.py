"""The `stepwire check-bridge` battery, in order, in one session with the example bridge."""
import json

from conftest import EXAMPLE, INIT_PARAMS, frame, note, req


def test_check_bridge_battery_on_the_example(spawn):
    b = spawn(EXAMPLE)
    b.error(1, "env/tasks", code=-32002)
    b.error(2, "initialize", dict(INIT_PARAMS, protocolVersion=99), code=-31005)
    caps = b.initialize()["capabilities"]["environment"]
    tasks = b.result(3, "env/tasks")["tasks"]
    task = tasks[0]["id"]
    r = b.result(4, "env/reset", {"task": task, "split": "train", "variation": 0, "seed": 1})
    s = b.result(5, "env/step", {"action": b.result(6, "env/admissibleActions")["actions"][0]})
    assert isinstance(s["done"], bool)
    b.error(7, "env/step", {"action": "xyzzy plugh"}, code=-31001)
    b.error(8, "no/such/method", code=-32601)
    b.error(9, "env/step", {"action": 12}, code=-32602)
    b.send(frame(b"{this is not json"))
    assert b.recv()["error"]["code"] == -32700
    b.result(10, "env/tasks")
    n = 4 * 1024 * 1024 + 10
    b.send(b"Content-Length: %d\r\n\r\n" % n + b"x" * n)
    assert b.recv()["error"]["code"] == -32600
    b.result(11, "env/tasks")
    b.send(frame(req(12, "env/tasks")) + frame(note("$/cancelRequest", {"id": 12})))
    m = b.recv()
    assert m["id"] == 12 and ("result" in m or m["error"]["code"] == -32800)
    b.no_message()
    assert caps["seededReset"]
    again = b.result(13, "env/reset", {"task": task, "split": "train", "variation": 0, "seed": 1})
    r.pop("episodeId"), again.pop("episodeId")
    assert json.dumps(r, sort_keys=True) == json.dumps(again, sort_keys=True)
    assert b.shutdown_and_exit() == 0
