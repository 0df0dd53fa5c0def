"""initialize / initialized / shutdown / exit, exactly as the Rust side defines them."""
from conftest import EXAMPLE, INIT_PARAMS, frame, note, req


def test_requests_before_initialize_are_refused(spawn):
    b = spawn(EXAMPLE)
    for rid, method in [(1, "env/tasks"), ("a", "env/step"), (2, "no/such"), (3, "shutdown")]:
        err = b.error(rid, method, {"action": "x"} if method == "env/step" else None, code=-32002)
        assert "not initialized" in err["message"]
    b.send(frame(note("initialized")))  # notifications before initialize are dropped
    b.send(frame(note("$/cancelRequest", {"id": 1})))
    b.no_message()
    assert b.initialize()["protocolVersion"] == 1


def test_version_mismatch_then_a_good_initialize(spawn):
    b = spawn(EXAMPLE)
    err = b.error(1, "initialize", {"protocolVersion": 2, "clientInfo": {"name": "t"}}, code=-31005)
    assert err["data"] == {"requested": 2, "supported": [1]}
    b.error(2, "env/tasks", code=-32002)  # still not initialized
    b.initialize()
    assert b.result(3, "env/tasks")["tasks"]


def test_initialize_result(spawn):
    b = spawn(EXAMPLE)
    res = b.result(1, "initialize", INIT_PARAMS)
    assert res["protocolVersion"] == 1
    assert res["serverInfo"] == {"name": "garden", "version": "1.0.0"}
    assert res["capabilities"] == {
        "environment": {
            "name": "garden",
            "admissibleActions": True,
            "expertAction": True,
            "seededReset": True,
            "observationParts": ["inventory"],
            "resetOptions": [],
        }
    }


def test_initialize_tolerates_unknown_fields_and_meta(spawn):
    b = spawn(EXAMPLE)
    params = dict(INIT_PARAMS, capabilities={"progress": True, "future": 1}, _meta={"trace": "x"}, extra=[1])
    assert b.result("init", "initialize", params)["protocolVersion"] == 1


def test_initialize_with_bad_params(spawn):
    b = spawn(EXAMPLE)
    for params in [
        None,
        [],
        {},
        {"protocolVersion": "1", "clientInfo": {"name": "t"}},
        {"protocolVersion": -1, "clientInfo": {"name": "t"}},
        {"protocolVersion": 1.5, "clientInfo": {"name": "t"}},
        {"protocolVersion": True, "clientInfo": {"name": "t"}},
        {"protocolVersion": 1, "clientInfo": "me"},
        {"protocolVersion": 1, "clientInfo": {"name": "t"}, "capabilities": []},
        {"protocolVersion": 1, "clientInfo": {"name": "t"}, "_meta": 3},
    ]:
        b.send(frame(req(1, "initialize") if params is None else req(1, "initialize", params)))
        msg = b.recv()
        assert msg["error"]["code"] == -32602, (params, msg)
    b.initialize()


def test_initialize_twice(garden):
    garden.error(5, "initialize", INIT_PARAMS, code=-32600)
    garden.result(6, "env/tasks")


def test_shutdown_then_exit_is_code_0(garden):
    assert garden.result(1, "shutdown") is None
    garden.error(2, "env/tasks", code=-32003)
    garden.error(3, "shutdown", code=-32003)
    garden.error(4, "initialize", INIT_PARAMS, code=-32003)
    garden.error(5, "no/such", code=-32003)
    garden.send(frame(note("exit")))
    garden.recv_eof()
    assert garden.wait() == 0


def test_exit_without_shutdown_is_code_1(garden):
    garden.send(frame(note("exit")))
    garden.recv_eof()
    assert garden.wait() == 1


def test_exit_before_initialize_is_code_1(spawn):
    b = spawn(EXAMPLE)
    b.send(frame(note("exit")))
    assert b.wait() == 1


def test_shutdown_and_exit_in_one_write(garden):
    garden.send(frame(req(1, "shutdown")) + frame(note("exit")))
    assert garden.recv()["result"] is None
    assert garden.wait() == 0


def test_eof_without_shutdown_is_code_1(garden):
    garden.close_stdin()
    garden.recv_eof()
    assert garden.wait() == 1


def test_unknown_methods_are_answered_never_fatal(garden):
    for rid, method in [(1, "no/such"), (2, "env/teleport"), (3, "$/custom"), (4, "")]:
        err = garden.error(rid, method, code=-32601)
        assert method in err["message"]
    garden.result(5, "env/tasks")


def test_string_and_numeric_ids(garden):
    assert garden.call("abc", "env/tasks")["id"] == "abc"
    assert garden.call("", "env/tasks")["id"] == ""
    assert garden.call(-7, "env/tasks")["id"] == -7
    assert garden.call(2**62, "env/tasks")["id"] == 2**62
    # 1 and "1" are different ids
    assert garden.call("1", "env/tasks")["id"] == "1"


def test_initialized_and_unknown_notifications_get_no_answer(garden):
    garden.send(frame(note("initialized", {})))
    garden.send(frame(note("$/progress", {"token": 1, "value": {"kind": "end"}})))
    garden.send(frame(note("something")))
    garden.no_message()


def test_shutdown_calls_close_and_waits_for_work_in_flight(testenv):
    testenv.result(1, "env/reset", {"task": "count"})
    testenv.send(frame(req(2, "env/step", {"action": "sleep:0.5"})) + frame(req(3, "shutdown")) + frame(note("exit")))
    assert testenv.recv()["id"] == 2
    assert testenv.recv()["id"] == 3
    assert testenv.wait() == 0


def test_an_id_already_in_flight_is_refused(testenv):
    testenv.result(1, "env/reset", {"task": "count"})
    testenv.send(frame(req(2, "env/step", {"action": "sleep:0.4"})) + frame(req(2, "env/tasks")))
    dup = testenv.recv()
    assert dup["id"] == 2 and dup["error"]["code"] == -32600 and "in flight" in dup["error"]["message"]
    assert "result" in testenv.recv()  # the first request 2 is answered normally
    testenv.result(2, "env/tasks")  # and the id is free again
