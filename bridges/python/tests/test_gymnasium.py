"""stepwire_bridge.gymnasium on real Gymnasium environments (CliffWalking through its ansi
rendering with the default renderer and labels; a Text-space riddle), and its guards."""

import re
import string
import subprocess
import sys

import pytest

import stepwire_bridge as sw
from stepwire_bridge.gymnasium import GymnasiumEnvironment, GymTask, SeedSplits, value_iteration_expert

from conftest import SDK_DIR

gym = pytest.importorskip("gymnasium")


def cliff(**kw):
    task = GymTask("cliff", "CliffWalking-v1", make_kwargs={"render_mode": "ansi"}, won=lambda r, t, i: t)
    return GymnasiumEnvironment("cliff", [task], SeedSplits.from_sizes(train=3, test=2), **kw)


def test_splits_are_disjoint_and_named_in_order():
    s = SeedSplits.from_sizes(5, train=3, test=2)
    assert s.ranges == {"train": range(5, 8), "test": range(8, 10)} and s.seed("test", 1) == 9
    with pytest.raises(ValueError, match="share seeds"):
        SeedSplits({"train": range(0, 10), "test": range(9, 12)})
    with pytest.raises(ValueError, match="non-empty"):
        SeedSplits({"train": range(0)})


def test_default_render_labels_and_score():
    env = cliff()
    assert env.capabilities()["expertAction"] is False and env.capabilities()["seededReset"]
    [task] = env.tasks()
    assert task.id == "cliff" and [(s.name, s.count) for s in task.splits] == [("train", 3), ("test", 2)]
    r = env.reset("cliff", "train", 0, None, {})
    assert "\x1b" not in r.observation and "x" in r.observation  # the ansi map, colours stripped
    assert r.task_description == "CliffWalking-v1" and r.meta["gymSeed"] == 0
    assert env.admissible_actions() == ["0", "1", "2", "3"]  # no labels: the indices
    s = env.step("0")  # up
    assert s.reward == -1 and s.score == -1 and not s.done
    with pytest.raises(sw.InvalidAction, match="the actions are: 0, 1, 2, 3"):
        env.step("4")
    with pytest.raises(sw.NoExpert):
        env.expert_action()
    env.close()


def test_value_iteration_expert_walks_the_cliff_edge():
    env = cliff(expert=value_iteration_expert())
    env.reset("cliff", "test", 1, None, {})
    for n in range(1, 20):
        advice = env.expert_action()
        assert advice == env.expert_action()  # asking twice changes nothing
        s = env.step(advice.action)
        if s.done:
            break
    assert s.won and n == 13 and s.score == -13  # the shortest path: up, 11 right, down
    env.close()


def test_an_advisor_is_consulted_once_per_state_in_order():
    calls = []

    def expert(env):
        calls.clear()
        return lambda last: calls.append(last) or 1  # always "right"

    env = cliff(expert=expert)
    env.reset("cliff", "train", 0, None, {})
    env.step("0")  # nobody asked: consulted anyway before the step
    env.expert_action()
    env.expert_action()
    env.step("1")
    assert calls == [None, 0]
    env.close()


def test_an_expert_that_fails_never_fails_the_step():
    def expert(env):
        def advise(last):
            if last is not None:
                raise RuntimeError("lost my plan")
            return 0
        return advise

    env = cliff(expert=expert)
    env.reset("cliff", "train", 0, None, {})
    assert env.expert_action().action == "0"
    env.step("0")  # up
    assert env.step("1").reward == -1  # the advisor raised when consulted before it: the step stands
    with pytest.raises(sw.NoExpert, match="the expert gave up: RuntimeError: lost my plan"):
        env.expert_action()
    env.step("1")
    with pytest.raises(sw.NoExpert):
        env.expert_action()
    env.reset("cliff", "train", 0, None, {})  # a new episode, a new expert
    assert env.expert_action().action == "0"
    env.close()


class Riddle(gym.Env):
    """A text-in, text-out Gymnasium environment (observation and action spaces are `Text`):
    answer the riddle; `info` lists the admissible answers."""

    ANSWERS = ["map", "echo", "candle"]
    observation_space = gym.spaces.Text(200, charset=string.printable)
    action_space = gym.spaces.Text(20)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.answer = self.ANSWERS[int(self.np_random.integers(3))]
        return f"What am I? (the answer is {len(self.answer)} letters)", {"admissible_actions": self.ANSWERS}

    def step(self, action):
        right = action == self.answer
        return ("Right!" if right else "No."), float(right), right, False, {"admissible_actions": self.ANSWERS}


def test_text_spaces_play_strings_and_info_lists_the_admissible_actions():
    gym.register("StepwireRiddle-v0", entry_point=Riddle, max_episode_steps=2)
    env = GymnasiumEnvironment("riddle", [GymTask("riddle", "StepwireRiddle-v0")], SeedSplits.from_sizes(train=5))
    r = env.reset("riddle", "train", 2, None, {})
    assert r.observation.startswith("What am I?") and env.admissible_actions() == ["map", "echo", "candle"]
    with pytest.raises(sw.InvalidAction, match="not in the action space"):
        env.step("x" * 21)
    s = env.step("wrong")
    assert s.observation == "No." and not s.done
    s = env.step("wrong")  # the time limit: truncated, not won
    assert s.done and s.truncated and not s.won
    for v in range(5):
        r = env.reset("riddle", "train", v, None, {})
        n = int(r.observation.split("is ")[1][0])
        s = env.step({3: "map", 4: "echo", 6: "candle"}[n])
        assert s.done and s.won and s.score == 1 and not s.truncated
    env.close()


def test_unknown_env_id_is_a_crash_with_the_reason():
    task = GymTask("x", "NoSuchEnv-v9")
    env = GymnasiumEnvironment("x", [task], SeedSplits.from_sizes(train=1))
    with pytest.raises(sw.EnvironmentCrashed, match="NoSuchEnv"):
        env.reset("x", "train", 0, None, {})


def test_require_says_what_to_install():
    code = ("import sys; sys.path.insert(0, %r); from stepwire_bridge.gymnasium import require; "
            "require('no_such_package_xyz')" % str(SDK_DIR))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.startswith("error: this bridge needs the Python package `no_such_package_xyz`")
    assert "pip install no_such_package_xyz" in p.stderr and "Traceback" not in p.stderr


def test_readme_example_is_a_working_bridge(spawn, tmp_path):
    readme = (SDK_DIR / "README.md").read_text(encoding="utf-8")
    code = re.search(r"## Gymnasium environments\n.*?```python\n(.*?)```", readme, re.S).group(1)
    script = tmp_path / "taxi.py"
    script.write_text(f"import sys; sys.path.insert(0, {str(SDK_DIR)!r})\n" + code)
    b = spawn(script)
    assert b.initialize()["capabilities"]["environment"]["expertAction"]
    r = b.result(1, "env/reset", {"task": "taxi", "split": "test", "variation": 0})
    assert r["_meta"]["gymSeed"] == 1000 and r["observation"]["text"].startswith("The taxi is at row ")
    action = b.result(2, "env/expertAction", {})["action"]
    assert b.result(3, "env/step", {"action": action})["reward"] == -1
    assert b.shutdown_and_exit() == 0
