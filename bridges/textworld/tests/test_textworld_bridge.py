"""The TextWorld bridge as a real subprocess over real pipes."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(REPO, "bridges"))
sys.path.insert(0, os.path.join(REPO, "bridges", "textworld"))
import games as twgames  # noqa: E402
from bridge_testing import bridge_command, started, survivors_of_a_killed_bridge  # noqa: E402
from replay_check import RpcError, play_expert  # noqa: E402

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
    assert "-= " not in r["observation"]["text"].splitlines()[-1]  # no status line
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
