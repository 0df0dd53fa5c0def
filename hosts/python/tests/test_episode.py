"""`run_episode` / `arun_episode`: real policies, real environments, recordings that match
`stepwire run --record` line for line and validate against `schemas/record.line.json`."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any, Dict, List, Tuple

import pytest

from conftest import ROOT, pairs, policy, record_lines, validator
from stepwire_host import AsyncClient, Client, InfoKeys, arun_episode, run_episode

TIMINGS = ("envSeconds", "agentSeconds")


def comparable(line: Dict[str, Any]) -> Dict[str, Any]:
    """A line without what differs between any two runs (wall-clock seconds) or what only the
    bridge knows (its gold-path facts)."""
    line = {k: v for k, v in line.items() if k not in TIMINGS}
    if line["kind"] == "episode":
        line["resetMeta"] = {k: line["resetMeta"][k] for k in ("variationIdx", "simplifications")}
    return line


def test_the_scienceworld_episode_records_what_stepwire_run_records(binary, tmp_path):
    from stepwire_host.envs.scienceworld import ScienceWorldGym

    # Sampled, not greedy: the same actions then also need the same per-step seeds, derived from
    # the episode's seed as the controller derives them.
    theirs = tmp_path / "run.jsonl"
    subprocess.run([binary, "run", "--env", "scienceworld", "--policy", policy("scienceworld-step-hrl"),
                    "--split", "test", "--tasks", "find-animal", "--per-task", "1", "--seed", "7",
                    "--max-steps", "8", "--temperature", "0.9", "--jobs", "1", "--record", str(theirs)],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    theirs_lines = record_lines(theirs)
    seed = theirs_lines[-1]["reset"]["seed"]  # the reset seed the runner drew from --seed 7
    ours = tmp_path / "host.jsonl"
    with Client.spawn(policy("scienceworld-step-hrl")) as agent, ScienceWorldGym("find-animal", split="test") as env:
        summary = run_episode(agent, env, max_steps=8, seed=seed, sampling={"temperature": 0.9}, record=ours)
    ours_lines = record_lines(ours)
    check = validator("record.line.json")
    for line in ours_lines:
        check.validate(line)
    assert len(ours_lines) == len(theirs_lines) > 8
    for i, (a, b) in enumerate(zip(theirs_lines, ours_lines)):
        assert list(a) == list(b), f"line {i}: fields or their order differ"
        assert comparable(a) == comparable(b), f"line {i} differs"
    assert summary == {k: v for k, v in ours_lines[-1].items() if k != "kind"}
    assert summary["steps"] == 8 and summary["score"] > 0


class Corridor:
    """A small text game, Gymnasium-shaped: walk east to the door and open it."""

    def __init__(self, length: int = 2, fail_at: int = -1) -> None:
        self.length, self.fail_at = length, fail_at

    def reset(self, *, seed=None, options=None) -> Tuple[str, Dict[str, Any]]:
        self.at, self.moves = 0, 0
        return "You are in a corridor.", {"task_description": "open the door at the east end",
                                          "moves": self._actions()}

    def _actions(self) -> List[str]:
        return ["go east", "open door"] if self.at == self.length else ["go east", "go west", "wait"]

    def step(self, action: str):
        self.moves += 1
        if self.moves == self.fail_at:
            raise RuntimeError("the corridor collapsed")
        if action == "open door" and self.at == self.length:
            return "The door opens. You are out!", 1.0, True, False, {"moves": [], "won": True, "score": 1.0}
        if action not in self._actions():  # refused: nothing happens (a bridge's invalid_action)
            self.moves -= 1
            return "Invalid action: no such move here", 0.0, False, False, {"moves": self._actions(),
                                                                              "invalid_action": True}
        if action == "go east":
            self.at = min(self.at + 1, self.length)
        elif action == "go west":
            self.at = max(self.at - 1, 0)
        return f"You are {self.at} steps along.", 0.0, False, False, {"moves": self._actions(), "score": 0.0}


def test_a_gymnasium_style_env_over_websocket_with_asyncio(tiny_server, tmp_path, wire):
    record = tmp_path / "corridor.jsonl"
    keys = InfoKeys(admissible_actions="moves")

    async def main():
        async with await AsyncClient.connect(f"ws://{tiny_server.addr}", token=tiny_server.token) as agent:
            return await arun_episode(agent, Corridor(), max_steps=6, record=record, keys=keys,
                                      episode={"env": "corridor", "task": "door", "split": "test", "variation": 0})

    summary = asyncio.run(main())
    lines = record_lines(record)
    check = validator("record.line.json")
    for line in lines:
        check.validate(line)
    transitions, episodes = pairs(lines)
    assert len(episodes) == 1 and summary["outcome"] in ("won", "truncated")
    lows = [t for t in transitions if t["level"] == "low"]
    assert len(lows) == summary["steps"] and 1 <= summary["steps"] <= 6
    # The policy was held to the admissible actions the env listed under the configured key.
    assert all(t["action"] in ("go east", "go west", "wait", "open door") for t in lows)
    assert [t["step"] for t in lows] == list(range(summary["steps"]))
    assert sum(1 for t in transitions if t["level"] == "high") >= 1
    # Every agent/step the loop sent (state, observation, admissible actions, sampling) and every
    # answer follow the schemas.
    steps_sent = [m for m in wire.sent if m.get("method") == "agent/step"]
    assert len(steps_sent) == summary["steps"] and wire.check_schemas() >= 2 * len(steps_sent)
    assert all(m["params"]["admissibleActions"] for m in steps_sent)


def test_failures_end_the_episode_as_stepwire_run_does(binary, tmp_path):
    record = tmp_path / "failed.jsonl"
    with Client.spawn("rules") as agent:
        broken = run_episode(agent, Corridor(fail_at=2), record=record, keys=InfoKeys(admissible_actions="moves"))
    assert broken["outcome"] == "failed" and broken["failure"] == "step: the corridor collapsed"
    assert broken["steps"] == 1
    with Client.spawn(policy("tiny-llama")) as agent:
        class Verbose(Corridor):
            def reset(self, *, seed=None, options=None):
                _, info = super().reset()
                return "words " * 3000, info

        too_long = run_episode(agent, Verbose(), record=record, keys=InfoKeys(admissible_actions="moves"))
    assert too_long["outcome"] == "failed" and too_long["failure"].startswith("policy: ")
    assert "-31012" in too_long["failure"]
    check = validator("record.line.json")
    lines = record_lines(record)
    for line in lines:
        check.validate(line)
    assert [l["outcome"] for l in lines if l["kind"] == "episode"] == ["failed", "failed"]


def test_max_steps_truncates_the_episode(binary, tmp_path):
    record = tmp_path / "truncated.jsonl"
    with Client.spawn("rules") as agent:
        summary = run_episode(agent, Corridor(length=0), max_steps=5, record=record,
                              keys=InfoKeys(admissible_actions="moves"))
    # `rules` plays the first admissible action, "go east", into the wall, again and again.
    assert summary["outcome"] == "truncated" and summary["steps"] == 5
    lows = [l for l in record_lines(record) if l.get("level") == "low"]
    assert [l["action"] for l in lows] == ["go east"] * 5


def test_a_missing_task_description_is_a_clear_error(binary):
    class NoTask(Corridor):
        def reset(self, *, seed=None, options=None):
            return "A corridor.", {}

    with Client.spawn("rules") as agent:
        with pytest.raises(ValueError, match="task description"):
            run_episode(agent, NoTask())


def test_a_free_writing_policy_gets_a_second_choice_when_refused(binary, tmp_path, wire):
    # The ScienceWorld policy writes actions freely (`constrainedDecoding: false`): it is not given
    # the corridor's moves, writes ScienceWorld-like actions the corridor refuses, and each
    # refusal is repaired once by `agent/act` constrained to the admissible moves, as in
    # `stepwire run`.
    record = tmp_path / "repaired.jsonl"
    with Client.spawn(policy("scienceworld-step-hrl")) as agent:
        assert agent.info["capabilities"]["agent"]["constrainedDecoding"] is False
        summary = run_episode(agent, Corridor(), max_steps=4, record=record, keys=InfoKeys(admissible_actions="moves"))
    steps_sent = [m for m in wire.sent if m.get("method") == "agent/step"]
    acts_sent = [m for m in wire.sent if m.get("method") == "agent/act"]
    assert steps_sent and all("admissibleActions" not in m["params"] for m in steps_sent)
    assert acts_sent and all(m["params"]["admissibleActions"] for m in acts_sent)
    lows = [l for l in record_lines(record) if l.get("level") == "low"]
    assert len(lows) == summary["steps"]
    # Every action played is a corridor move: what the policy wrote was refused and replaced.
    assert all(l["action"] in ("go east", "go west", "wait", "open door") for l in lows)
    assert not any(l["nextState"]["observation"]["text"].startswith("Invalid") for l in lows)
    assert wire.check_schemas() > 0
