"""The env/* methods: result shapes, SDK-enforced rules, params checking, author errors."""
import pytest
from conftest import TEST_ENV, req


def test_tasks(garden):
    tasks = garden.result(1, "env/tasks", {"_meta": {"x": 1}})["tasks"]
    assert [t["id"] for t in tasks] == ["water-plant", "plant-seed", "pick-flower"]
    assert tasks[0]["splits"] == [{"name": "train", "count": 4}, {"name": "test", "count": 2}]


def test_reset_then_play_to_a_win_with_the_expert(garden):
    r = garden.result(1, "env/reset", {"task": "plant-seed", "split": "test", "variation": 1, "seed": 7})
    assert r["variation"] == 1 and r["maxScore"] == 4 and "sage" in r["taskDescription"]
    assert set(r["observation"]["parts"]) == {"inventory"}
    total, rid = 0, 10
    while True:
        action = garden.result(rid, "env/expertAction")["action"]
        assert action in garden.result(rid + 1, "env/admissibleActions")["actions"]
        s = garden.result(rid + 2, "env/step", {"action": action})
        total += s["reward"]
        rid += 3
        if s["done"]:
            break
    assert s["won"] and not s["truncated"] and s["score"] == total == 4
    assert garden.result(rid, "env/expertAction")["action"] is None
    err = garden.error(rid + 1, "env/step", {"action": "look"}, code=-31004)
    assert "reset" in err["message"]


def test_seeded_reset_repeats_exactly(garden):
    def play(seed, rid):
        out = [garden.result(rid, "env/reset", {"task": "water-plant", "seed": seed})]
        for i, a in enumerate(["look", "take can", "fill can"]):
            out.append(garden.result(rid + 1 + i, "env/step", {"action": a}))
        out[0].pop("episodeId")
        return out

    assert play(42, 10) == play(42, 20)
    layouts = {play(seed, 30 + 10 * seed)[0]["observation"]["text"] for seed in range(8)}
    assert len(layouts) > 1  # the seed matters


def test_variation_is_chosen_from_the_seed(garden):
    a = garden.result(1, "env/reset", {"task": "pick-flower", "seed": 123})
    b = garden.result(2, "env/reset", {"task": "pick-flower", "seed": 123})
    assert a["variation"] == b["variation"] and 0 <= a["variation"] < 4
    assert a["episodeId"] != b["episodeId"]


def test_truncation_after_the_step_limit(garden):
    garden.result(1, "env/reset", {"task": "water-plant", "variation": 0})
    for i in range(25):
        s = garden.result(10 + i, "env/step", {"action": "look"})
    assert s["done"] and s["truncated"] and not s["won"]
    garden.error(99, "env/step", {"action": "look"}, code=-31004)


def test_step_before_reset(garden):
    garden.error(1, "env/step", {"action": "look"}, code=-31006)
    garden.error(2, "env/admissibleActions", code=-31006)
    garden.error(3, "env/expertAction", code=-31006)


def test_invalid_action(garden):
    garden.result(1, "env/reset", {"task": "water-plant"})
    err = garden.error(2, "env/step", {"action": "fly away"}, code=-31001)
    assert "fly away" in err["message"]
    garden.result(3, "env/step", {"action": "look"})  # the episode goes on


def test_unknown_task_split_variation(garden):
    err = garden.error(1, "env/reset", {"task": "nope"}, code=-31003)
    assert err["data"] == {"tasks": ["water-plant", "plant-seed", "pick-flower"]}
    err = garden.error(2, "env/reset", {"task": "water-plant", "split": "dev"}, code=-31003)
    assert err["data"] == {"task": "water-plant", "splits": ["train", "test"]}
    err = garden.error(3, "env/reset", {"task": "water-plant", "split": "test", "variation": 2}, code=-31003)
    assert err["data"] == {"task": "water-plant", "split": "test", "count": 2}


def test_invalid_params(garden):
    cases = [
        ("env/reset", None),
        ("env/reset", []),
        ("env/reset", {}),
        ("env/reset", {"task": 3}),
        ("env/reset", {"task": "water-plant", "variation": -1}),
        ("env/reset", {"task": "water-plant", "variation": "1"}),
        ("env/reset", {"task": "water-plant", "variation": 1.5}),
        ("env/reset", {"task": "water-plant", "variation": True}),
        ("env/reset", {"task": "water-plant", "seed": -3}),
        ("env/reset", {"task": "water-plant", "seed": 2**64}),
        ("env/reset", {"task": "water-plant", "split": 0}),
        ("env/reset", {"task": "water-plant", "options": []}),
        ("env/reset", {"task": "water-plant", "options": {"unannounced": 1}}),
        ("env/reset", {"task": "water-plant", "_meta": "x"}),
        ("env/step", None),
        ("env/step", {}),
        ("env/step", {"action": 5}),
        ("env/step", {"action": None}),
        ("env/step", {"action": ["look"]}),
        ("env/tasks", [1]),
    ]
    for rid, (method, params) in enumerate(cases):
        garden.send(req(rid, method, params) if params is not None else req(rid, method))
        msg = garden.recv()
        assert msg["id"] == rid and msg["error"]["code"] == -32602, (method, params, msg)
        assert msg["error"]["message"]
    assert garden.result(100, "env/reset", {"task": "water-plant", "seed": 2**64 - 1, "extra": 1})


def test_unknown_fields_and_meta_are_tolerated(garden):
    garden.result(1, "env/reset", {"task": "water-plant", "future": {"x": 1}, "_meta": {"a": 1}})
    # beyond the schema, but harmless: null where an optional object is expected
    assert "result" in garden.call(9, "env/reset", {"task": "water-plant", "options": None, "split": None})
    garden.result(2, "env/step", {"action": "look", "whatever": True, "_meta": None})


def test_unannounced_methods_are_method_not_found(testenv):
    testenv.result(1, "env/reset", {"task": "count"})
    assert "not supported" in testenv.error(2, "env/admissibleActions", code=-32601)["message"]
    testenv.error(3, "env/expertAction", code=-32601)


def test_testenv_capabilities_and_defaults(spawn):
    from conftest import TEST_ENV

    b = spawn(TEST_ENV)
    caps = b.initialize()["capabilities"]["environment"]
    assert caps["admissibleActions"] is False and caps["expertAction"] is False
    assert caps["resetOptions"] == ["difficulty"]
    assert b.result(1, "env/reset", {"task": "nodefault"})["taskDescription"].startswith("nodefault dev ")
    b.error(2, "env/reset", {"task": "empty"}, code=-31003)
    r = b.result(3, "env/reset", {"task": "count", "options": {"difficulty": "hard"}, "seed": 5})
    assert "'difficulty': 'hard'" in r["observation"]["parts"]["echo"]


def test_author_exception_is_internal_error_and_the_bridge_goes_on(testenv):
    testenv.result(1, "env/reset", {"task": "count"})
    err = testenv.error(2, "env/step", {"action": "boom"}, code=-32603)
    assert "kaboom" in err["message"] and "RuntimeError" in err["message"]
    testenv.result(3, "env/step", {"action": "fine"})


def test_environment_crashed_loses_the_episode(testenv):
    testenv.result(1, "env/reset", {"task": "count"})
    assert "engine died" in testenv.error(2, "env/step", {"action": "crash"}, code=-31002)["message"]
    testenv.error(3, "env/step", {"action": "a"}, code=-31006)
    testenv.result(4, "env/reset", {"task": "count"})
    testenv.result(5, "env/step", {"action": "a"})


def test_author_invalid_action_class(testenv):
    testenv.result(1, "env/reset", {"task": "count"})
    assert "'zap'" in testenv.error(2, "env/step", {"action": "invalid:zap"}, code=-31001)["message"]


def test_bad_values_from_author_code_are_internal_errors(testenv):
    testenv.result(1, "env/reset", {"task": "count"})
    assert "finite" in testenv.error(2, "env/step", {"action": "nan"}, code=-32603)["message"]
    assert "Step" in testenv.error(3, "env/step", {"action": "badtype"}, code=-32603)["message"]
    testenv.result(4, "env/step", {"action": "ok"})


def test_done_is_enforced_by_the_sdk(testenv):
    testenv.result(1, "env/reset", {"task": "count"})
    assert testenv.result(2, "env/step", {"action": "finish"})["done"]
    testenv.error(3, "env/step", {"action": "a"}, code=-31004)
    testenv.result(4, "env/reset", {"task": "count"})
    testenv.result(5, "env/step", {"action": "a"})


def test_log_message_and_progress_notifications(testenv):
    testenv.result(1, "env/reset", {"task": "count"})
    testenv.send(req(2, "env/step", {"action": "log:hello there"}))
    msg = testenv.recv()
    assert msg == {"jsonrpc": "2.0", "method": "$/logMessage",
                   "params": {"level": "warn", "message": "hello there", "data": {"n": 0}}}
    assert testenv.recv()["id"] == 2
    testenv.send(req(3, "env/step", {"action": "progress"}))
    kinds = [testenv.recv() for _ in range(4)]
    assert [m["params"]["value"]["kind"] for m in kinds[:3]] == ["begin", "report", "end"]
    assert kinds[1]["params"]["value"] == {"kind": "report", "message": "halfway", "percentage": 50}
    assert kinds[3]["id"] == 3


def test_no_notifications_when_the_client_did_not_ask(spawn):
    from conftest import TEST_ENV

    b = spawn(TEST_ENV)
    b.initialize()
    b.result(1, "env/reset", {"task": "count"})
    b.result(2, "env/step", {"action": "log:quiet"})
    b.result(3, "env/step", {"action": "progress"})
    b.no_message()
    assert "quiet" in b.stderr


def test_large_observation(testenv):
    testenv.result(1, "env/reset", {"task": "count"})
    assert len(testenv.result(2, "env/step", {"action": "big:1000000"})["observation"]["text"]) == 1_000_000


@pytest.mark.parametrize("action, code", [("exit:3", 3), ("exit:0", 0), ("interrupt", 130)])
def test_an_environment_that_ends_the_process_is_answered_then_exits(spawn, action, code):
    # sys.exit() or Ctrl-C inside a handler: the request gets an answer, then the process ends
    # with the code asked for (a worker thread's own exit would leave the client waiting).
    b = spawn(TEST_ENV)
    b.initialize()
    b.result(1, "env/reset", {"task": "count"})
    err = b.error(2, "env/step", {"action": action}, code=-31002)
    assert "ended the bridge" in err["message"] and f"exit code {code}" in err["message"]
    assert b.wait() == code
