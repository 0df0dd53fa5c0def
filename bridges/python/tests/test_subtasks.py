"""`SubtaskNames`: a plan's actions named by subtask from the kind of each action."""
import sys

from conftest import SDK_DIR

sys.path.insert(0, str(SDK_DIR))
import stepwire_bridge as sw  # noqa: E402


def test_looks_join_the_next_subtask_and_the_last_at_the_end():
    n = sw.SubtaskNames(5)
    n.look(0)
    n.act(1, "take the key")
    n.look(2)
    n.act(3, "open the door")
    n.look(4)
    assert n.names() == ["take the key", "take the key", "open the door", "open the door", "open the door"]


def test_a_run_of_moves_is_named_by_its_latest_step():
    n = sw.SubtaskNames(6)
    n.look(0)
    assert n.run is None
    n.move(1, "go to the hall")
    n.look(2)
    n.move(3, "go to the kitchen")
    assert n.run == "go to the kitchen"
    n.act(4, "take the pot")
    assert n.run is None
    n.move(5, "go north")
    assert n.names() == ["go to the kitchen"] * 4 + ["take the pot", "go north"]


def test_answers_join_the_action_before_them():
    n = sw.SubtaskNames(5)
    n.answer(0)  # nothing before it: waits like a look
    n.act(1, "move the seed to the pot")
    n.answer(2)
    n.look(3)
    n.answer(4)  # after a look: waits for the next subtask (here, the end)
    assert n.names() == ["move the seed to the pot"] * 5


def test_empty_and_look_only_plans():
    assert sw.SubtaskNames(0).names() == []
    n = sw.SubtaskNames(2)
    n.look(0)
    n.look(1)
    assert n.names() == ["look around", "look around"]
    assert n.names(empty="wait") == ["wait", "wait"]
