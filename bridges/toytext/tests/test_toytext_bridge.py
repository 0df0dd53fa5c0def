"""The toy-text bridge (Gymnasium's Taxi and FrozenLake) as a real subprocess over real pipes."""

import os
import re
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(REPO, "bridges"))
from bridge_testing import bridge_command, play_expert_subtasks, started, subtask_groups  # noqa: E402
from bridge_client import RpcError  # noqa: E402

pytest.importorskip("gymnasium", reason="gymnasium is not installed: run scripts/setup.sh")

CMD = bridge_command("toytext", "--train", "100", "--valid", "10", "--test", "30")


@pytest.fixture(scope="module")
def bridge():
    yield from started(CMD)


def taxi_position(text):
    """(row, col) of the taxi in the map, and the row/column the sentence says."""
    rows = text.splitlines()[1:6]
    drawn = next((r, (line.index(m) - 1) // 2) for r, line in enumerate(rows) for m in "T@" if m in line)
    said = tuple(int(n) for n in re.search(r"row (\d), column (\d)", text).groups())
    return drawn, said


def test_tasks(bridge):
    caps = bridge.init_result["capabilities"]["environment"]
    assert caps["name"] == "toytext" and caps["expertAction"] and caps["seededReset"]
    assert [t["id"] for t in bridge.tasks()] == ["taxi", "frozenlake", "frozenlake-8x8"]


def test_the_taxi_expert_wins_with_two_legs(bridge):
    for v in range(6):
        r = bridge.reset("taxi", "test", v)
        drawn, said = taxi_position(r["observation"]["text"])
        assert drawn == said, r["observation"]["text"]
        played, won = play_expert_subtasks(bridge, 60)
        assert won, played
        names = [name for name, _ in subtask_groups(played)]
        assert names[-1].startswith("drop off the passenger at ") and names[-2].startswith("pick up the passenger")


def test_the_lake_expert_mostly_wins_on_slippery_ice(bridge):
    wins = 0
    for v in range(10):
        r = bridge.reset("frozenlake", "test", v)
        assert "P" in r["observation"]["text"] and "slippery" in r["taskDescription"]
        wins += play_expert_subtasks(bridge, 100)[1]
    assert wins >= 6  # the optimal policy wins about 74 % of 4x4 slippery games


def test_admissible_actions_follow_taxis_action_mask(bridge):
    bridge.reset("taxi", "train", 0)  # taxi at row 3, column 0, not at the passenger
    allowed = bridge.admissible()
    assert "pick up passenger" not in allowed and "drop off passenger" not in allowed
    assert "go west" not in allowed  # the map's wall
    s = bridge.step(allowed[0])
    assert s["reward"] == -1 and s["score"] == -1 and not s["done"]
    with pytest.raises(RpcError) as e:
        bridge.step("teleport")
    assert e.value.code == -31001 and "go north" in e.value.message


def test_seeded_reset_repeats_and_variations_differ(bridge):
    starts = []
    for v in (0, 0, 1, 2):
        r = bridge.reset("taxi", "valid", v)
        r.pop("episodeId")
        starts.append(r)
    assert starts[0] == starts[1] and len({s["observation"]["text"] for s in starts[1:]}) == 3
