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
from bridge_client import RpcError, play_expert  # noqa: E402

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


def test_every_observation_names_the_rooms_receptacles(bridge):
    r = bridge.reset("alfworld", "valid_unseen", 0)
    room = r["observation"]["parts"]["room"]
    places = room.split(", ")
    assert len(places) > 5 and places == sorted(places, key=lambda p: (p.rsplit(" ", 1)[0], int(p.rsplit(" ", 1)[1])))
    assert all(f"go to {p}" in bridge.admissible() for p in places)
    s = bridge.step(f"go to {places[-1]}")
    assert s["observation"]["parts"] == {"room": room}
    assert bridge.init_result["capabilities"]["environment"]["observationParts"] == ["room"]
    plain = bridge.reset("alfworld", "valid_unseen", 0, options={"room": "none"})
    assert "parts" not in plain["observation"] and plain["observation"]["text"] == r["observation"]["text"]
    with pytest.raises(RpcError) as e:
        bridge.reset("alfworld", "valid_unseen", 0, options={"room": "sometimes"})
    assert e.value.code == -32602 and "room" in e.value.message


def test_old_recordings_gain_the_room_part_the_bridge_sends(bridge, tmp_path):
    import json
    import subprocess

    r = bridge.reset("alfworld", "valid_unseen", 3)
    first = bridge.step(bridge.expert())
    episode = {"env": "alfworld", "task": "alfworld", "split": "valid_unseen", "variation": 3, "repeat": 0}

    def bare(obs):
        return {"text": obs["text"]}

    old = {"kind": "transition", "episode": episode, "step": 0, "level": "low",
           "state": {"subtask": "x", "progress": "", "observation": bare(r["observation"])},
           "action": "look", "subtaskDone": False,
           "nextState": {"subtask": "x", "progress": "", "observation": bare(first["observation"])},
           "reward": 0.0, "done": False}
    (tmp_path / "old.jsonl").write_text(json.dumps(old) + "\n" + json.dumps({"kind": "episode", "episode": episode}) + "\n")
    subprocess.run([sys.executable, os.path.join(REPO, "bridges/alfworld/add_room_part.py"),
                    str(tmp_path / "old.jsonl"), str(tmp_path / "new.jsonl")], check=True)
    new = json.loads((tmp_path / "new.jsonl").read_text().splitlines()[0])
    assert new["state"]["observation"] == r["observation"]
    assert new["nextState"]["observation"] == first["observation"]


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
