"""DAgger relabelling: the learner's states with the expert's answers (`stepwire run
--expert-labels`), on a real recording."""

from __future__ import annotations

import copy

from conftest import DATA
from stepwire_train.dataset import build_samples, expert_labelled
from stepwire_train.manifest import load_manifest
from stepwire_train.records import iter_episodes

LABELLED = DATA / "lockbox-rules-labelled.jsonl"  # stepwire run --env lockbox --policy rules
#   --episodes 6 --seed 5 --max-steps 8 --expert-labels


def manifest():
    from conftest import TRAIN

    return load_manifest(TRAIN / "manifests" / "compact.toml")


def test_high_and_progress_take_the_expert_labels():
    episodes = list(iter_episodes([LABELLED]))
    assert episodes and all(t.get("_meta") for ep in episodes for t in ep.transitions)
    for ep in episodes:
        relabelled = expert_labelled(ep)
        highs = [t for t in relabelled if t["level"] == "high"]
        assert highs and all(t["subtask"] == t["_meta"]["expert"]["subtask"] for t in highs)
        progress = [t for t in relabelled if t["level"] == "progress"]
        assert progress and all(t["progress"] == t["_meta"]["expertProgress"] for t in progress)
        # The rules planner's subtask is the whole task, never the expert's: no low sample
        # could pair the expert's action with a subtask it does not serve.
        assert not [t for t in relabelled if t["level"] == "low"]


def test_low_samples_follow_the_expert_and_close_its_subtasks():
    ep = copy.deepcopy(next(iter(iter_episodes([LABELLED]))))
    # Make the learner's subtask the expert's at every low step, as when it planned right.
    for t in ep.transitions:
        if t["level"] == "low":
            t["state"]["subtask"] = t["_meta"]["expert"]["subtask"]
    lows = [t for t in expert_labelled(ep) if t["level"] == "low"]
    advice = {t["step"]: t["_meta"]["expert"] for t in ep.transitions if t["level"] == "low"}
    assert len(lows) == len(advice)
    for t in lows:
        assert t["action"] == advice[t["step"]]["action"]
        following = advice.get(t["step"] + 1)
        learner_followed = next(x["action"] for x in ep.transitions
                                if x["level"] == "low" and x["step"] == t["step"]) == t["action"]
        if following is not None:
            assert t["subtaskDone"] == (learner_followed and following["subtask"] != advice[t["step"]]["subtask"])
    # Rendered as samples: targets carry the expert's actions.
    samples = build_samples([ep], manifest(), labels="expert")
    low = [s for s in samples if s["role"] == "low"]
    assert [s["target"].split(" ||| ")[0].strip() for s in low] == [t["action"] for t in lows]
