"""env/expertAction: what `expert_action()` returns (a str, None, or `sw.Expert(action, subtask)`)
on the wire, and a clear internal error, not a crash or a hang, for a value of the wrong type."""
import sys

import pytest
from conftest import HERE, SDK_DIR

sys.path.insert(0, str(SDK_DIR))
import stepwire_bridge as sw  # noqa: E402

EXPERT_ENV = HERE / "envs" / "expertenv.py"


@pytest.fixture
def expertenv(spawn):
    b = spawn(EXPERT_ENV)
    assert b.initialize()["capabilities"]["environment"]["expertAction"] is True
    return b


def advice(b, kind, rid=1):
    b.result(rid, "env/reset", {"task": "box", "options": {"advice": kind}})
    return b.call(rid + 1, "env/expertAction", {})


def test_expert_with_a_subtask_puts_it_on_the_wire(expertenv):
    # every reply is validated against env.expertAction.result.json by the harness
    assert advice(expertenv, "expert")["result"] == {"action": "take key", "subtask": "get the key"}


@pytest.mark.parametrize("kind,wire", [
    ("str", {"action": "take key"}),
    ("expert-no-subtask", {"action": "take key"}),
    ("none", {"action": None}),
    ("expert-none", {"action": None}),
])
def test_no_subtask_key_without_a_subtask(expertenv, kind, wire):
    assert advice(expertenv, kind)["result"] == wire  # exactly: no "subtask" key at all


@pytest.mark.parametrize("kind,words", [
    ("expert-int-action", "Expert.action"),
    ("expert-int-subtask", "Expert.subtask"),
    ("int", "expert_action() must return"),
    ("dict", "expert_action() must return"),
])
def test_wrong_types_are_internal_errors_and_the_bridge_goes_on(expertenv, kind, words):
    err = advice(expertenv, kind)["error"]
    assert err["code"] == -32603 and words in err["message"], err
    # the bridge answers the next request, and the episode is intact
    assert expertenv.result(10, "env/step", {"action": "look"})["observation"]["text"] == "You look."
    assert advice(expertenv, "expert", rid=11)["result"]["subtask"] == "get the key"
    assert expertenv.shutdown_and_exit() == 0


def test_expert_is_exported_and_keeps_its_fields():
    e = sw.Expert("open box", "open the box")
    assert (e.action, e.subtask) == ("open box", "open the box")
    assert sw.Expert("look").subtask is None
    assert "Expert" in sw.__all__
