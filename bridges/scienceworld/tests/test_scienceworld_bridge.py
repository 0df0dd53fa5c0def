"""The ScienceWorld bridge as a real subprocess over real pipes (the JVM included)."""

import os
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(REPO, "bridges"))
from bridge_testing import (  # noqa: E402
    PYTHON as PY,
    bridge_command,
    bridge_module,
    play_expert_subtasks,
    started,
    subtask_groups,
)
from bridge_client import BridgeClient, RpcError, play_expert  # noqa: E402

CMD = bridge_command("scienceworld", "--jvm-heap", "1g")


def children(pid):
    """Direct children of pid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


@pytest.fixture(scope="module")
def bridge():
    yield from started(CMD)


def test_capabilities_and_tasks(bridge):
    caps = bridge.init_result["capabilities"]["environment"]
    assert caps["name"] == "scienceworld"
    assert caps["admissibleActions"] and caps["expertAction"] and caps["seededReset"]
    assert caps["observationParts"] == ["look", "inventory"]
    assert "simplifications" in caps["resetOptions"]
    tasks = {t["id"]: t for t in bridge.tasks()}
    assert len(tasks) == 30
    assert {s["name"]: s["count"] for s in tasks["boil"]["splits"]} == {"train": 14, "dev": 7, "test": 9}
    for t in tasks.values():
        assert [s["name"] for s in t["splits"]] == ["train", "dev", "test"]
        assert all(s["count"] > 0 for s in t["splits"])


@pytest.mark.parametrize("task,split,variation", [("find-living-thing", "train", 0), ("chemistry-mix", "dev", 1)])
def test_gold_sequence_wins(bridge, task, split, variation):
    res = play_expert(bridge, task, split, variation, max_steps=500)
    assert res["won"] and res["score"] == 100, res


def test_step_result_and_parts(bridge):
    r = bridge.reset("boil", "test", 2)
    assert r["maxScore"] == 100 and r["variation"] == 2
    assert "boil" in r["taskDescription"]
    assert set(r["observation"]["parts"]) == {"look", "inventory"}
    assert r["_meta"]["variationIdx"] >= 0
    assert r["_meta"]["goldScore"] == 100  # the generator's own run of the gold path won
    s = bridge.step("look around")
    assert s["done"] is False and s["won"] is False and s["score"] == 0
    assert "This room is called" in s["observation"]["text"]
    assert "inventory" in s["observation"]["parts"]["inventory"]


def test_invalid_action_is_an_error_and_changes_nothing(bridge):
    bridge.reset("melt", "train", 0)
    before = bridge.step("look around")["observation"]
    with pytest.raises(RpcError) as e:
        bridge.step("fly to the moon")
    assert e.value.code == -31001
    after = bridge.step("look around")["observation"]
    assert before == after


def test_seeded_reset_repeats(bridge):
    runs = []
    for _ in range(2):
        r = bridge.reset("freeze", "train", seed=7)
        obs = [r["observation"], r["variation"]]
        for _ in range(4):
            a = bridge.expert()
            obs.append(bridge.step(a))
        runs.append(obs)
    assert runs[0] == runs[1]


def test_admissible_and_expert(bridge):
    bridge.reset("boil", "train", 0)
    acts = bridge.admissible()
    assert len(acts) > 10 and "look around" in acts
    first = bridge.expert()
    bridge.step("inventory")  # off the gold path: lenient mode keeps the next gold action
    assert bridge.expert() == first
    bridge.reset("boil", "train", 0, options={"expertMode": "strict"})
    bridge.step("inventory")
    with pytest.raises(RpcError) as e:
        bridge.expert()
    assert e.value.code == -31007


def test_simplifications_easy(bridge):
    r = bridge.reset("boil", "train", 0, options={"simplifications": "easy"})
    assert "teleportAction" in r["_meta"]["simplifications"]
    assert any(a.startswith("teleport to") for a in bridge.admissible())
    with pytest.raises(RpcError) as e:
        bridge.reset("boil", "train", 0, options={"simplifications": "noSuchThing"})
    assert e.value.code == -32602


def _start_with_jvm():
    c = BridgeClient(CMD, start_new_session=True)
    c.initialize()
    c.reset("boil", "train", 0)
    jvms = children(c.proc.pid)
    assert jvms, "the JVM should be a child of the bridge"
    return c, jvms


def test_shutdown_leaves_no_jvm():
    c, jvms = _start_with_jvm()
    assert c.close() == 0
    assert wait_gone(jvms) == []


def test_killed_bridge_leaves_no_jvm():
    c, jvms = _start_with_jvm()
    os.kill(c.proc.pid, signal.SIGKILL)
    c.proc.wait(10)
    assert wait_gone(jvms) == []


def test_killed_parent_leaves_no_bridge_or_jvm():
    # parent = a Python process that starts the bridge, tells us the pids, then waits; SIGKILL it.
    script = (
        "import sys, time; sys.path.insert(0, %r)\n"
        "from bridge_client import BridgeClient\n"
        "c = BridgeClient(%r); c.initialize(); c.reset('boil', 'train', 0)\n"
        "import test_scienceworld_bridge as t\n"
        "print(c.proc.pid, *t.children(c.proc.pid), flush=True)\n"
        "time.sleep(600)\n"
    ) % (os.path.join(REPO, "bridges"), CMD)
    parent = subprocess.Popen([PY, "-c", script], stdout=subprocess.PIPE, cwd=HERE, start_new_session=True)
    pids = [int(x) for x in parent.stdout.readline().split()]
    assert len(pids) >= 2
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(10)
    assert wait_gone(pids, 20) == []


def test_pick_option_avoids_moves_that_do_nothing():
    B = bridge_module("scienceworld")

    prompt = ("Ambiguous request: Please enter the number for the action you intended (or blank to cancel):\n"
              "0:\tmove pea seed (in seed jar, in inventory, in agent, in greenhouse) to seed jar (in inventory, in agent, in greenhouse)\n"
              "1:\tmove pea seed (in pea plant, in flower pot 1, in greenhouse) to seed jar (in inventory, in agent, in greenhouse)\n"
              "2:\tmove pea seed (in pea plant, in flower pot 8, in greenhouse) to seed jar (in inventory, in agent, in greenhouse)\n")
    options = B._prompt_options(prompt)
    assert len(options) == 3 and options[2].startswith("move pea seed (in pea plant, in flower pot 8")
    assert B._pick_option(options, 0) == "1"  # option 0 moves a seed into the jar it is in
    assert B._pick_option(options, 2) == "2"  # the gold number when it does something
    assert B._pick_option(options, 7) == "1"  # out of range: the first useful option
    assert B._pick_option(options[:1], 0) == "0"  # nothing better: the gold number
    assert B._prompt_options("You move the pea seed to the seed jar.") is None


def _to_prompt(bridge):
    """grow-plant train 0: play the gold path up to its first ambiguity prompt, where the gold
    path's next action is its "0" (generated anew at each reset: the pot differs). Returns the
    seed and pot of the ambiguous move, and the gold action after the "0" (focusing on it)."""
    bridge.reset("grow-plant", "train", 0)
    for _ in range(50):
        text = bridge.step(bridge.expert())["observation"]["text"]
        if text.startswith("Ambiguous request"):
            move = text.split("\n")[1].split("\t")[1]  # move apple seed (in seed jar, ...) to flower pot 3 (in ...)
            seed, pot = move[len("move "):].split(" (in ")[0], move.split(" to ")[1].split(" (in ")[0]
            return seed, pot, f"focus on {seed} in {pot}"
    raise AssertionError("no ambiguity prompt in grow-plant's gold path")


def test_expert_answers_prompts_and_skips_what_no_longer_fits(bridge):
    # The expert answers the open prompt with a number; played, the gold path goes on.
    _, _, after = _to_prompt(bridge)
    answer = bridge.expert()
    assert answer.isdigit()
    bridge.step(answer)
    assert bridge.expert() == after
    # The agent answers the prompt itself: the gold "0" has no prompt left to answer (it would
    # be refused) and is skipped.
    _, _, after = _to_prompt(bridge)
    bridge.step("1")
    assert bridge.expert() == after
    # A prompt the gold path does not expect (the agent repeats the ambiguous move): any other
    # command would be swallowed by it ("Unknown action"), so the expert answers it first.
    seed, pot, after = _to_prompt(bridge)
    bridge.step(bridge.expert())
    assert bridge.step(f"move {seed} in seed jar to {pot}")["observation"]["text"].startswith("Ambiguous request")
    answer = bridge.expert()
    assert answer.isdigit()
    assert "Unknown action" not in bridge.step(answer)["observation"]["text"]
    assert bridge.expert() == after


def test_refused_gold_action_is_skipped(bridge):
    # Off the gold path into another room: a gold action the simulator now refuses is skipped,
    # not proposed forever (lenient mode).
    bridge.reset("grow-plant", "train", 0)
    for a in ("open door to kitchen", "go to kitchen"):
        assert bridge.expert() == a
        bridge.step(a)
    assert bridge.expert() == "look around"
    bridge.step("open door to hallway")
    bridge.step("go to hallway")  # the seed jar stays in the kitchen
    bridge.step(bridge.expert())  # look around
    assert bridge.expert() == "pick up seed jar"
    with pytest.raises(RpcError) as e:
        bridge.step("pick up seed jar")
    assert e.value.code == -31001
    assert bridge.expert() not in ("pick up seed jar", None)


def test_gold_subtasks_rules():
    B = bridge_module("scienceworld")

    gold = ["open door to kitchen", "go to kitchen", "look around", "pick up thermometer",
            "look around", "open door to hallway", "go to hallway", "look around", "open door to outside",
            "go to outside", "move apple seed in seed jar to flower pot 3", "0", "use thermometer in inventory on "
            "substance in metal pot", "wait1", "wait1", "look around", "wait1", "focus on egg turtle in outside",
            "pour cup containing blue paint in art studio in jug", "connect battery anode to orange wire terminal 1",
            "activate stove", "teleport to workshop", "wait", "look around"]
    assert subtask_groups(zip(gold, B.gold_subtasks(gold))) == [
        ("go to the kitchen", ["open door to kitchen", "go to kitchen"]),
        ("pick up the thermometer", ["look around", "pick up thermometer"]),
        ("go outside", ["look around", "open door to hallway", "go to hallway", "look around",
                        "open door to outside", "go to outside"]),
        ("move the apple seed in seed jar to the flower pot 3", ["move apple seed in seed jar to flower pot 3", "0"]),
        ("use the thermometer on the substance in metal pot", ["use thermometer in inventory on substance in metal pot"]),
        ("wait", ["wait1", "wait1", "look around", "wait1"]),
        ("focus on the egg turtle", ["focus on egg turtle in outside"]),
        ("pour the cup containing blue paint into the jug", ["pour cup containing blue paint in art studio in jug"]),
        ("connect the battery anode to the orange wire terminal 1", ["connect battery anode to orange wire terminal 1"]),
        ("activate the stove", ["activate stove"]),
        ("go to the workshop", ["teleport to workshop"]),
        ("wait", ["wait", "look around"]),  # looking at the very end: the subtask before
    ]
    assert B.gold_subtasks([]) == [] and B.gold_subtasks(["look around"]) == ["look around"]


def test_expert_names_subtasks_and_replaying_it_still_wins(bridge):
    # find-living-thing: the gold path's animal and first room vary between generations, its
    # shape does not (README.md, Expert's subtasks).
    r = bridge.reset("find-living-thing", "train", 0)
    played, won = play_expert_subtasks(bridge, r["_meta"]["goldLength"] + 5)
    assert won, played
    animal = next(a for a, _ in played if a.startswith("focus on "))[len("focus on "):]
    groups = subtask_groups(played)
    assert [g[0] for g in groups] == ["go outside", f"focus on the {animal}", f"pick up the {animal}",
                                      "go to the kitchen", f"move the egg {animal} egg to the red box"], groups
    assert [len(g[1]) for g in groups] == [4, 2, 1, 2, 1]
    assert groups[1][1] == ["look around", f"focus on {animal}"]


def test_subtasks_follow_the_gold_position_through_detours_and_prompts(bridge):
    # A detour (lenient mode) does not move the expert, nor its subtask.
    bridge.reset("boil", "train", 0)
    first = bridge.expert_advice()
    assert first["subtask"] == "go to the kitchen"
    bridge.step("inventory")
    assert bridge.expert_advice() == first
    # An ambiguity prompt's answer belongs to the subtask of the action it answers.
    seed, pot, after = _to_prompt(bridge)
    answer = bridge.expert_advice()
    assert answer["action"].isdigit() and answer["subtask"] == f"move the {seed} in seed jar to the {pot}"
    bridge.step(answer["action"])
    assert bridge.expert_advice() == {"action": after, "subtask": f"focus on the {seed} in {pot}"}
