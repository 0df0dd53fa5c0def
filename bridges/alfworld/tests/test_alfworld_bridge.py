"""The ALFWorld bridge as a real subprocess over real pipes."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(REPO, "bridges"))
from bridge_testing import (  # noqa: E402
    bridge_command,
    play_expert_subtasks,
    started,
    subtask_groups,
    survivors_of_a_killed_bridge,
)
from replay_check import RpcError, play_expert  # noqa: E402

CMD = bridge_command("alfworld")
DATA = os.environ.get("ALFWORLD_DATA") or os.path.join(REPO, ".cache", "alfworld")

pytestmark = pytest.mark.skipif(not os.path.isdir(os.path.join(DATA, "json_2.1.1")),
                                reason="no ALFWorld games: run scripts/setup.sh (scripts/prepare-alfworld.py)")


@pytest.fixture(scope="module")
def bridge():
    yield from started(CMD)


def test_tasks_have_the_real_game_counts(bridge):
    caps = bridge.init_result["capabilities"]["environment"]
    assert caps["name"] == "alfworld" and caps["admissibleActions"] and caps["expertAction"]
    tasks = {t["id"]: {s["name"]: s["count"] for s in t["splits"]} for t in bridge.tasks()}
    assert tasks["alfworld"] == {"train": 3553, "valid_seen": 140, "valid_unseen": 134, "valid_train": 199}
    assert len(tasks) == 7
    for split in ("train", "valid_seen", "valid_unseen", "valid_train"):
        assert sum(c[split] for t, c in tasks.items() if t != "alfworld") == tasks["alfworld"][split]


@pytest.mark.parametrize("variation", [1, 18])
def test_handcoded_expert_wins(bridge, variation):
    res = play_expert(bridge, "alfworld", "valid_unseen", variation, max_steps=200)
    assert res["won"] and res["score"] == 1, res


def test_reset_and_step_shape(bridge):
    r = bridge.reset("pick_and_place_simple", "valid_seen", 0)
    assert r["maxScore"] == 1 and r["taskDescription"]
    assert r["observation"]["text"].startswith("You are in the middle of a room")
    assert "Welcome to TextWorld" not in r["observation"]["text"]
    acts = bridge.admissible()
    assert "look" in acts and "inventory" in acts
    s = bridge.step("inventory")
    assert s["done"] is False and s["won"] is False and s["reward"] == 0


def test_invalid_action(bridge):
    bridge.reset("alfworld", "valid_unseen", 0)
    with pytest.raises(RpcError) as e:
        bridge.step("fly to the moon")
    assert e.value.code == -31001
    assert bridge.expert() == "look"  # the expert did not see the rejected action
    bridge.reset("alfworld", "valid_unseen", 0, options={"invalidAction": "observe"})
    s = bridge.step("fly to the moon")
    assert s["observation"]["text"] == "Nothing happens." and not s["done"]


def test_seeded_reset_repeats(bridge):
    runs = []
    for _ in range(2):
        r = bridge.reset("alfworld", "valid_seen", seed=3)
        seq = [r]
        for _ in range(5):
            seq.append(bridge.step(bridge.expert()))
        runs.append(seq)
    for a, b in zip(*runs):
        a.pop("episodeId", None), b.pop("episodeId", None)
    assert runs[0] == runs[1]


def test_killed_bridge_leaves_no_child():
    # the whole session the bridge led is gone (no planner or other helper left behind)
    assert survivors_of_a_killed_bridge(CMD, "alfworld", "valid_unseen", 0) == []


# The act that ends each subtask, as the command that does it (README.md, Expert's subtasks).
ACT_COMMAND = {"take": "take", "heat": "heat", "cool": "cool", "clean": "clean", "use": "use", "put": "move"}


@pytest.mark.parametrize("task,variation,subtasks", [
    ("pick_heat_then_place_in_recep", 0,
     ["take a apple", "heat the apple with the microwave", "put the apple in/on the fridge"]),
    ("look_at_obj_in_light", 1, ["take a alarmclock", "use the desklamp"]),
])
def test_expert_subtasks_follow_the_documented_sequence(bridge, task, variation, subtasks):
    bridge.reset(task, "valid_unseen", variation)
    played, won = play_expert_subtasks(bridge, 60)
    assert won, played
    groups = subtask_groups(played)
    assert [g[0] for g in groups] == subtasks, groups
    assert played[0][0] == "look"  # the expert's first action belongs to the first subtask
    for subtask, actions in groups:
        # each subtask ends with its act (the find or go-to before it can take any number of steps)
        assert actions[-1].split()[0] == ACT_COMMAND[subtask.split()[0]], (subtask, actions)
        assert all(a.split()[0] != ACT_COMMAND[subtask.split()[0]] for a in actions[:-1]), (subtask, actions)
