"""The BabyAI bridge as a real subprocess over real pipes, playing minigrid's real levels."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(REPO, "bridges"))
from bridge_testing import bridge_command, bridge_module, play_expert_subtasks, started, subtask_groups  # noqa: E402
from bridge_client import RpcError  # noqa: E402

pytest.importorskip("minigrid", reason="minigrid is not installed: run scripts/setup.sh")
gym = pytest.importorskip("gymnasium")

CMD = bridge_command("babyai", "--train", "50", "--valid", "10", "--test", "20")
LEVELS = ["goto-red-ball", "goto-obj", "goto-local", "pickup-loc", "open-door"]


@pytest.fixture(scope="module")
def bridge():
    yield from started(CMD)


def test_tasks_are_levels_and_splits_are_disjoint_seed_ranges(bridge):
    caps = bridge.init_result["capabilities"]["environment"]
    assert caps["name"] == "babyai" and caps["expertAction"] and caps["admissibleActions"] and caps["seededReset"]
    tasks = {t["id"]: t for t in bridge.tasks()}
    assert sorted(tasks) == sorted(LEVELS)
    assert {s["name"]: s["count"] for s in tasks["goto-local"]["splits"]} == {"train": 50, "valid": 10, "test": 20}
    seeds = {split: [bridge.reset("goto-local", split, v)["_meta"]["gymSeed"] for v in (0, n - 1)]
             for split, n in (("train", 50), ("valid", 10), ("test", 20))}
    assert seeds == {"train": [0, 49], "valid": [50, 59], "test": [60, 79]}


def test_the_expert_wins_every_level(bridge):
    for level in LEVELS:
        for v in range(4):
            r = bridge.reset(level, "test", v)
            assert r["taskDescription"] and r["maxScore"] == 1.0
            played, won = play_expert_subtasks(bridge, 64)
            assert won, (level, v, played)
            groups = subtask_groups(played)
            assert all(name for name, _ in groups), groups
            if level == "pickup-loc":
                assert groups[-1][0].startswith("pick up the ") and groups[-1][1] == ["pick up"], groups
            if level == "open-door":
                assert groups[-1][0].startswith("open the ") and groups[-1][1][-1] == "toggle", groups


def test_carrying_shows_in_the_text_and_the_inventory_part(bridge):
    r = bridge.reset("pickup-loc", "test", 1)
    assert r["observation"]["parts"]["inventory"] == "You carry nothing."
    last = None
    for _ in range(64):
        last = bridge.step(bridge.expert())
        if last["done"]:
            break
    assert last["won"] and 0 < last["score"] <= 1
    carried = last["observation"]["parts"]["inventory"]
    assert carried.startswith("You carry a ") and carried in last["observation"]["text"]
    assert carried[len("You carry a "):-1] in r["taskDescription"]  # the object the mission named


def test_actions_are_named_and_nonsense_is_refused(bridge):
    bridge.reset("goto-obj", "train", 3)
    assert bridge.admissible() == ["turn left", "turn right", "go forward", "pick up", "drop", "toggle", "done"]
    s = bridge.step("  Turn   LEFT ")
    assert s["observation"]["text"].startswith("You face ") and not s["done"]
    with pytest.raises(RpcError) as e:
        bridge.step("fly away")
    assert e.value.code == -31001 and "turn left" in e.value.message and "go forward" in e.value.data["actions"]


def test_seeded_reset_repeats_and_seeds_differ(bridge):
    def run(v):
        r = bridge.reset("goto-local", "train", v)
        r.pop("episodeId")
        return [r] + [bridge.step(a) for a in ("turn left", "turn right", "turn right", "drop")]
    assert run(7) == run(7)
    assert run(7)[0] != run(8)[0]


def test_text_view_agrees_with_minigrids_own_geometry():
    """Every object minigrid says is in view is named where minigrid's own view coordinates put it
    (independent of how text_view indexes the image)."""
    sys.path.insert(0, os.path.join(REPO, "bridges", "babyai"))
    bridge_mod = bridge_module("babyai")
    import text_view

    checked = 0
    for level in ("BabyAI-GoToLocal-v0", "BabyAI-PickupLoc-v0"):
        env = gym.make(level)
        for seed in range(15):
            obs, _ = env.reset(seed=seed)
            raw = env.unwrapped
            text = bridge_mod.render(env, obs, {}).text
            for i in range(raw.width):
                for j in range(raw.height):
                    cell = raw.grid.get(i, j)
                    if cell is None or cell.type == "wall" or not raw.in_view(i, j):
                        continue
                    vx, vy = raw.get_view_coords(i, j)
                    if obs["image"][vx][vy][0] == 0:  # hidden behind a wall
                        continue
                    name = text_view.name_of(*cell.encode())
                    assert f"{name} {text_view.where(6 - vy, vx - 3)}" in text, (level, seed, name, text)
                    checked += 1
        env.close()
    assert checked > 50


def test_where_phrases():
    sys.path.insert(0, os.path.join(REPO, "bridges", "babyai"))
    import text_view

    assert text_view.where(2, -1) == "2 steps ahead and 1 to the left"
    assert text_view.where(1, 0) == "1 step ahead"
    assert text_view.where(0, 2) == "2 steps to your right"
    assert text_view.name_of(4, 2, 2) == "a locked blue door"
    assert text_view.name_of(6, 0, 0) == "a red ball"
    from minigrid.envs.babyai.core.verifier import ObjDesc

    describe_goal = bridge_module("babyai").describe_goal
    assert describe_goal(ObjDesc("box", None, "behind")) == "the box behind you"
    assert describe_goal(ObjDesc("key", "red")) == "the red key"
