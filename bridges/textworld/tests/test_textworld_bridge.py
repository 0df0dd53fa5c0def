"""The TextWorld bridge as a real subprocess over real pipes."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(REPO, "bridges"))
sys.path.insert(0, os.path.join(REPO, "bridges", "textworld"))
import games as twgames  # noqa: E402
from bridge_testing import (  # noqa: E402
    bridge_command,
    bridge_module,
    play_expert_subtasks,
    started,
    subtask_groups,
    survivors_of_a_killed_bridge,
)
from bridge_client import RpcError, play_expert  # noqa: E402

GAMES = twgames.default_games_dir()
CMD = bridge_command("textworld", "--games", GAMES)

pytestmark = pytest.mark.skipif(not any(twgames.list_games(GAMES, f) for f in twgames.FAMILIES),
                                reason="no TextWorld games: run scripts/setup.sh (scripts/make-textworld-games.py)")


@pytest.fixture(scope="module")
def bridge():
    yield from started(CMD)


def test_tasks_are_families(bridge):
    caps = bridge.init_result["capabilities"]["environment"]
    assert caps["name"] == "textworld" and caps["admissibleActions"] and caps["expertAction"]
    assert caps["resetOptions"] == ["game"]
    tasks = {t["id"]: {s["name"]: s["count"] for s in t["splits"]} for t in bridge.tasks()}
    for fam in twgames.FAMILIES:
        assert tasks[fam]["train"] == len(twgames.list_games(GAMES, fam)) > 0


def test_every_walkthrough_wins(bridge):
    for task in bridge.tasks():
        for v in range(task["splits"][0]["count"]):
            res = play_expert(bridge, task["id"], "train", v, max_steps=200)
            assert res["won"] and res["score"] == res["maxScore"], res


def test_step_shape_and_unknown_command(bridge):
    r = bridge.reset("cooking", "train", 0)
    assert r["maxScore"] > 0 and "cook" in r["taskDescription"].lower()
    text = r["observation"]["text"]
    assert "-= " not in text.splitlines()[-1]  # no status line
    assert "$$" not in text and text[0].isalpha(), text[:200]  # no ASCII-art logo
    assert "-= " in text  # the room is still there
    assert bridge.admissible()
    s = bridge.step("dance wildly")  # the parser answers; not an error (see README)
    assert "verb" in s["observation"]["text"] and s["score"] == 0 and not s["done"]


def test_user_game_option(bridge):
    path = twgames.list_games(GAMES, "custom")[0]
    res_game = bridge.reset("coin_collector", "train", 0, options={"game": path})
    assert res_game["_meta"]["game"] == path
    with pytest.raises(RpcError) as e:
        bridge.reset("custom", "train", 0, options={"game": "/no/such/game.z8"})
    assert e.value.code == -31003


def test_seeded_reset_repeats(bridge):
    runs = []
    for _ in range(2):
        r = bridge.reset("custom", "train", seed=11)
        r.pop("episodeId")
        seq = [r] + [bridge.step(a) for a in ("look", "inventory", bridge.expert())]
        runs.append(seq)
    assert runs[0] == runs[1]


def test_killed_bridge_leaves_no_child():
    assert survivors_of_a_killed_bridge(CMD, "cooking", "train", 1) == []


def test_command_subtasks_rules():
    B = bridge_module("textworld")

    exits = {"bedroom": {"west": "livingroom"}, "livingroom": {"south": "corridor"}, "corridor": {"west": "kitchen"}}
    walk = ["inventory", "go west", "go south", "look", "go west", "examine cookbook", "drop yellow apple",
            "take red potato from counter", "cook red potato with stove", "slice red potato with knife",
            "insert laptop into box", "put worm on table", "unlock type G chest with type G latchkey",
            "open type G chest", "go north", "go east", "prepare meal", "eat meal", "look"]
    assert subtask_groups(zip(walk, B.command_subtasks(walk, "bedroom", exits))) == [
        ("go to the kitchen", ["inventory", "go west", "go south", "look", "go west"]),
        ("drop the yellow apple", ["examine cookbook", "drop yellow apple"]),
        ("take the red potato", ["take red potato from counter"]),
        ("cook the red potato with the stove", ["cook red potato with stove"]),
        ("slice the red potato with the knife", ["slice red potato with knife"]),
        ("put the laptop in the box", ["insert laptop into box"]),
        ("put the worm on the table", ["put worm on table"]),
        ("unlock the type G chest with the type G latchkey", ["unlock type G chest with type G latchkey"]),
        ("open the type G chest", ["open type G chest"]),
        ("go north, east", ["go north", "go east"]),  # the map does not know where this leads
        ("prepare the meal", ["prepare meal"]),
        ("eat the meal", ["eat meal", "look"]),  # looking at the very end: the subtask before
    ]
    assert B.command_subtasks(["go west"]) == ["go west"]


def test_expert_names_subtasks_and_replaying_it_still_wins(bridge):
    # cooking-001 (seed 3001): the README's example. The expert follows TextWorld's plan, which
    # skips the walkthrough's `inventory`, `examine cookbook` and `drop`s.
    bridge.reset("cooking", "train", 1)
    played, won = play_expert_subtasks(bridge, 100)
    assert won, played
    assert subtask_groups(played) == [
        ("go to the kitchen", ["go west", "go south", "go west"]),
        ("take the red potato", ["take red potato from counter"]),
        ("cook the red potato with the stove", ["cook red potato with stove"]),
        ("take the knife", ["take knife from table"]),
        ("slice the red potato with the knife", ["slice red potato with knife"]),
        ("cook the yellow bell pepper with the oven", ["cook yellow bell pepper with oven"]),
        ("chop the yellow bell pepper with the knife", ["chop yellow bell pepper with knife"]),
        ("prepare the meal", ["prepare meal"]),
        ("eat the meal", ["eat meal"]),
    ]
    # custom-002 (seed 1002): plan and walkthrough are the same here.
    bridge.reset("custom", "train", 2)
    played, won = play_expert_subtasks(bridge, 100)
    assert won, played
    assert subtask_groups(played) == [
        ("open the gate", ["open gate"]),
        ("go to the chamber", ["go south", "go east"]),
        ("take the loaf of bread", ["take loaf of bread from chest"]),
        ("eat the loaf of bread", ["eat loaf of bread"]),
    ]


def test_subtasks_are_kept_while_followed_and_renamed_after_a_detour(bridge):
    bridge.reset("cooking", "train", 1)
    bridge.step("go west")
    assert bridge.expert_advice() == {"action": "go south", "subtask": "go to the kitchen"}
    bridge.step("look")  # a detour that changes nothing: same plan, same names
    assert bridge.expert_advice() == {"action": "go south", "subtask": "go to the kitchen"}
    bridge.step("go east")  # back where it started: the game plans anew, named from there
    played, won = play_expert_subtasks(bridge, 100)
    assert won and subtask_groups(played)[0] == ("go to the kitchen", ["go west", "go south", "go west"])
