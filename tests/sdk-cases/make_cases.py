"""Writes cases.json: the executable specification both bridge SDKs are held to.

The cases are data; this script only spares hand-writing Content-Length headers. Run it after
editing a case (`python3 tests/sdk-cases/make_cases.py`); a test fails when cases.json is stale.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ANY = "<any>"


def req(i, method, params=None):
    m = {"jsonrpc": "2.0", "id": i, "method": method}
    if params is not None:
        m["params"] = params
    return {"send": m}


def note(method, params=None):
    m = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        m["params"] = params
    return {"send": m}


def ok(i, result=ANY):
    return {"expect": {"id": i, "result": result}}


def err(i, code, data=None):
    e = {"code": code}
    if data is not None:
        e["data"] = data
    return {"expect": {"id": i, "error": e}}


def raw(text):
    return {"sendRaw": text}


def frame(body, headers=None):
    body_bytes = body.encode()
    headers = [h.replace("<n>", str(len(body_bytes))) for h in (headers or ["Content-Length: <n>"])]
    head = "".join(f"{h}\r\n" for h in headers)
    return raw(head + "\r\n" + body)


TASKS = {"tasks": [{"id": "count", "splits": [{"name": "train", "count": 3}, {"name": "test", "count": 1},
                                              {"name": "empty", "count": 0}]}]}
OBS = lambda n: {"text": f"count {n}"}  # noqa: E731


def step_result(n, reward, done):
    return {"observation": OBS(n), "reward": reward, "score": n, "done": done, "won": done, "truncated": False}


CASES = [
    # -- lifecycle --------------------------------------------------------------------------
    {"name": "a request before initialize gets -32002, then initialize works", "initialize": False, "steps": [
        req(1, "env/tasks", {}), err(1, -32002),
        req(2, "initialize", {"protocolVersion": 1, "clientInfo": {"name": "sdk-cases"}}),
        ok(2, {"protocolVersion": 1, "capabilities": {"environment": {
            "name": "counter", "admissibleActions": True, "expertAction": True, "seededReset": True,
            "resetOptions": ["start"]}}}),
        req(3, "env/tasks", {}), ok(3, TASKS)], "exit": 1},
    {"name": "an unknown protocol version gets -31005 with the supported ones", "initialize": False, "steps": [
        req(1, "initialize", {"protocolVersion": 99, "clientInfo": {"name": "sdk-cases"}}),
        err(1, -31005, {"requested": 99, "supported": [1]})], "exit": 1},
    {"name": "a second initialize gets -32600", "steps": [
        req(1, "initialize", {"protocolVersion": 1, "clientInfo": {"name": "sdk-cases"}}), err(1, -32600)],
     "exit": 1},
    {"name": "shutdown, then requests get -32003, then exit is code 0", "steps": [
        req(1, "shutdown"), ok(1, None), req(2, "env/tasks", {}), err(2, -32003), note("exit")], "exit": 0},
    {"name": "exit without shutdown is code 1", "steps": [note("exit")], "exit": 1},
    {"name": "end of input after shutdown is code 0", "steps": [req(1, "shutdown"), ok(1, None)], "exit": 0},
    {"name": "end of input without shutdown is code 1 (the client vanished)", "steps": [
        req(1, "env/tasks", {}), ok(1, TASKS)], "exit": 1},
    {"name": "an unknown notification is ignored", "steps": [
        note("env/whatever", {}), note("$/somethingNew", {}), req(1, "env/tasks", {}), ok(1, TASKS)], "exit": 1},

    # -- methods and params -------------------------------------------------------------------
    {"name": "an unknown method gets -32601", "steps": [req(1, "env/teleport", {}), err(1, -32601)], "exit": 1},
    {"name": "params of the wrong shape get -32602", "steps": [
        req(1, "env/reset", {}), err(1, -32602),
        req(2, "env/reset", {"task": 42}), err(2, -32602),
        req(3, "env/reset", [1, 2]), err(3, -32602),
        req(4, "env/reset", {"task": "count", "variation": -1}), err(4, -32602),
        req(5, "env/reset", {"task": "count"}), ok(5),
        req(6, "env/step", {"actoin": "inc"}), err(6, -32602),
        req(7, "env/step", {"action": 3}), err(7, -32602)], "exit": 1},
    {"name": "the admissible actions and the expert's advice", "steps": [
        req(1, "env/reset", {"task": "count", "variation": 0}), ok(1),
        req(2, "env/admissibleActions", {}), ok(2, {"actions": ["inc", "sleep", "crash"]}),
        req(3, "env/expertAction", {}), ok(3, {"action": "inc", "subtask": "count up"})], "exit": 1},

    # -- reset validation (the SDK's job, not the author's) -----------------------------------
    {"name": "reset: an unknown task gets -31003 listing the tasks", "steps": [
        req(1, "env/reset", {"task": "fly"}), err(1, -31003, {"tasks": ["count"]})], "exit": 1},
    {"name": "reset: an unknown split gets -31003 listing the task's splits", "steps": [
        req(1, "env/reset", {"task": "count", "split": "dev"}),
        err(1, -31003, {"task": "count", "splits": ["train", "test", "empty"]})], "exit": 1},
    {"name": "reset: a variation out of range gets -31003 with the count", "steps": [
        req(1, "env/reset", {"task": "count", "split": "train", "variation": 3}),
        err(1, -31003, {"task": "count", "split": "train", "count": 3})], "exit": 1},
    {"name": "reset: an empty split gets -31003", "steps": [
        req(1, "env/reset", {"task": "count", "split": "empty"}),
        err(1, -31003, {"task": "count", "split": "empty", "count": 0})], "exit": 1},
    {"name": "reset: an option the environment did not announce gets -32602", "steps": [
        req(1, "env/reset", {"task": "count", "options": {"speed": 2}}), err(1, -32602),
        req(2, "env/reset", {"task": "count", "variation": 0, "options": {"start": 5}}),
        ok(2, {"episodeId": "count-0", "taskDescription": "count to 7", "observation": OBS(5), "variation": 0,
               "maxScore": 7})], "exit": 1},
    {"name": "reset: without a variation, a seed picks seed % count; without a split, train", "steps": [
        req(1, "env/reset", {"task": "count", "seed": 7}),
        ok(1, {"episodeId": "count-1", "taskDescription": "count to 3", "observation": OBS(0), "variation": 1,
               "maxScore": 3}),
        req(2, "env/reset", {"task": "count", "split": "test", "seed": 7}), ok(2, {"variation": 0})], "exit": 1},

    # -- episode state (the SDK's job, not the author's) ------------------------------------------
    {"name": "no step, admissible actions or expert advice before a reset: -31006", "steps": [
        req(1, "env/step", {"action": "inc"}), err(1, -31006),
        req(2, "env/admissibleActions", {}), err(2, -31006),
        req(3, "env/expertAction", {}), err(3, -31006)], "exit": 1},
    {"name": "a whole episode, then -31004 after done, then a new reset plays again", "steps": [
        req(1, "env/reset", {"task": "count", "variation": 0}), ok(1, {"taskDescription": "count to 2"}),
        req(2, "env/step", {"action": "inc"}), ok(2, step_result(1, 1, False)),
        req(3, "env/step", {"action": "inc"}), ok(3, step_result(2, 1, True)),
        req(4, "env/step", {"action": "inc"}), err(4, -31004),
        req(5, "env/admissibleActions", {}), ok(5),
        req(6, "env/reset", {"task": "count", "variation": 0}), ok(6),
        req(7, "env/step", {"action": "inc"}), ok(7, step_result(1, 1, False))], "exit": 1},
    {"name": "an invalid action gets -31001 and the episode goes on", "steps": [
        req(1, "env/reset", {"task": "count", "variation": 0}), ok(1),
        req(2, "env/step", {"action": "dance"}), err(2, -31001),
        req(3, "env/step", {"action": "inc"}), ok(3, step_result(1, 1, False))], "exit": 1},
    {"name": "a crash gets -31002 and ends the episode: -31006 until a reset", "steps": [
        req(1, "env/reset", {"task": "count", "variation": 0}), ok(1),
        req(2, "env/step", {"action": "crash"}), err(2, -31002),
        req(3, "env/step", {"action": "inc"}), err(3, -31006),
        req(4, "env/reset", {"task": "count", "variation": 0}), ok(4),
        req(5, "env/step", {"action": "inc"}), ok(5, step_result(1, 1, False))], "exit": 1},

    # -- cancellation ---------------------------------------------------------------------------
    {"name": "a cancelled call gets exactly one answer, -32800 with data.completed", "steps": [
        req(1, "env/reset", {"task": "count", "variation": 0}), ok(1),
        req(2, "env/step", {"action": "sleep"}), note("$/cancelRequest", {"id": 2}),
        err(2, -32800, {"completed": ANY}),
        req(3, "env/tasks", {}), ok(3, TASKS)], "exit": 1},
    {"name": "cancelling an unknown or finished request changes nothing", "steps": [
        req(1, "env/tasks", {}), ok(1, TASKS), note("$/cancelRequest", {"id": 1}),
        note("$/cancelRequest", {"id": 99}), req(2, "env/tasks", {}), ok(2, TASKS)], "exit": 1},

    # -- messages that are not requests -------------------------------------------------------------
    {"name": "a body that is not JSON gets -32700 (id null) and the stream goes on", "steps": [
        frame('{"jsonrpc": "2.0", "id": 5, "method": "env/tas'), {"expect": {"id": None, "error": {"code": -32700}}},
        req(1, "env/tasks", {}), ok(1, TASKS)], "exit": 1},
    {"name": "a body that is not UTF-8 gets -32700", "steps": [
        {"sendHex": "436f6e74656e742d4c656e6774683a20330d0a0d0a22ff22"},
        {"expect": {"id": None, "error": {"code": -32700}}}, req(1, "env/tasks", {}), ok(1, TASKS)], "exit": 1},
    {"name": "JSON that is not JSON-RPC gets -32600 (id null)", "steps": [
        frame('{"hello": "world"}'), {"expect": {"id": None, "error": {"code": -32600}}},
        frame('[{"jsonrpc": "2.0", "id": 1, "method": "env/tasks"}]'),
        {"expect": {"id": None, "error": {"code": -32600}}},
        req(2, "env/tasks", {}), ok(2, TASKS)], "exit": 1},
    {"name": "an id that is not a string or an integer gets -32600 with id null", "steps": [
        frame('{"jsonrpc": "2.0", "id": 1.5, "method": "env/tasks", "params": {}}'),
        {"expect": {"id": None, "error": {"code": -32600}}},
        req(2, "env/tasks", {}), ok(2, TASKS)], "exit": 1},

    # -- framing ------------------------------------------------------------------------------------
    {"name": "blank lines between frames and header names in any case are fine", "steps": [
        raw("\r\n\r\n"), frame('{"jsonrpc":"2.0","id":1,"method":"env/tasks"}', ["content-length: <n>"]),
        ok(1, TASKS)], "exit": 1},
    {"name": "a repeated Content-Length with the same value is fine", "steps": [
        frame('{"jsonrpc":"2.0","id":1,"method":"env/tasks"}', ["Content-Length: <n>", "Content-Length: <n>"]),
        ok(1, TASKS)], "exit": 1},
    {"name": "conflicting Content-Length headers are fatal: -32600, then the stream ends", "steps": [
        frame('{"jsonrpc":"2.0","id":1,"method":"env/tasks"}', ["Content-Length: <n>", "Content-Length: 40"]),
        {"expect": {"id": None, "error": {"code": -32600}}}], "exit": 1},
    {"name": "no Content-Length is fatal", "steps": [
        frame('{}', ["Content-Type: application/json"]), {"expect": {"id": None, "error": {"code": -32600}}}],
     "exit": 1},
    {"name": "a Content-Length that is not a number is fatal", "steps": [
        frame('{}', ["Content-Length: two"]), {"expect": {"id": None, "error": {"code": -32600}}}], "exit": 1},
    {"name": "a broken header line before the length is fatal", "steps": [
        frame('{}', ["this is not a header", "Content-Length: 2"]),
        {"expect": {"id": None, "error": {"code": -32600}}}], "exit": 1},
    {"name": "a broken header line after the length skips the frame: -32600, and the stream goes on", "steps": [
        frame('{"jsonrpc":"2.0","id":1,"method":"env/tasks"}', ["Content-Length: <n>", "this is not a header"]),
        {"expect": {"id": None, "error": {"code": -32600}}}, req(2, "env/tasks", {}), ok(2, TASKS)], "exit": 1},
    {"name": "a charset other than UTF-8 skips the frame: -32600, and the stream goes on", "steps": [
        frame('{"jsonrpc":"2.0","id":1,"method":"env/tasks"}',
              ["Content-Length: <n>", "Content-Type: application/vscode-jsonrpc; charset=latin-1"]),
        {"expect": {"id": None, "error": {"code": -32600}}},
        frame('{"jsonrpc":"2.0","id":2,"method":"env/tasks"}',
              ["Content-Length: <n>", "Content-Type: application/vscode-jsonrpc; charset=utf-8"]),
        ok(2, TASKS)], "exit": 1},
    {"name": "a header block over 8 KiB is fatal", "steps": [
        frame('{}', ["X-Padding: " + "x" * 8200, "Content-Length: 2"]),
        {"expect": {"id": None, "error": {"code": -32600}}}], "exit": 1},
    {"name": "a frame over the 4 MiB limit is refused at once, before its body: -32600", "steps": [
        raw("Content-Length: 5000000\r\n\r\n"),
        {"expect": {"id": None, "error": {"code": -32600}}}], "exit": 1},
]

HEADER = [
    "The executable specification of a stepwire bridge SDK: both SDKs (Rust: tests/tests/sdk_cases.rs,",
    "Python: bridges/python/tests/test_sdk_cases.py) run every case against the conformance bridge",
    "`counter`, a real process over real pipes, and must pass all of them; generated by make_cases.py.",
    "counter: task `count`, splits train 3, test 1, empty 0; reset option `start` (default 0);",
    "seeded reset. A reset of variation v plays from n = start to target = start + v + 2: task",
    "description `count to <target>`, episode id `count-<v>`, observation `count <n>`, max score",
    "target. Actions: `inc` (n += 1, reward 1), `sleep` (2 s, reward 0), `crash` (-31002), any",
    "other -31001. score = n; done and won when n >= target. Admissible: inc, sleep, crash. Expert:",
    "`inc`, subtask `count up`.",
    "A case: unless `initialize` is false, the runner first sends `initialize` (protocol 1) and",
    "`initialized`. Then the steps in order: `send` (a message, framed), `sendRaw` (text written",
    "as is), `sendHex` (bytes), `expect` (the next answer, the bridge's notifications skipped).",
    "An expected value matches when every member it names is equal (numbers by value, objects",
    "member by member, arrays element by element); `<any>` matches any value that is present.",
    "After the steps the runner closes the bridge's input: no further answer may come, and the",
    "bridge must exit with code `exit`.",
]

if __name__ == "__main__":
    import sys

    text = json.dumps({"$comment": HEADER, "cases": CASES}, indent=1, ensure_ascii=True) + "\n"
    if "--print" in sys.argv:
        sys.stdout.write(text)
    else:
        with open(os.path.join(HERE, "cases.json"), "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {len(CASES)} cases")
