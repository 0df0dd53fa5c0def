"""Prompts equal golden renderings written by hand from the Rust rules (runtime/onnx/src/prompt.rs,
template.rs, sdk/src/protocol/observation.rs), on a real recording and on edge cases."""

import json

import pytest
from conftest import EXPERT, REPO

from stepwire_train.dataset import build_samples
from stepwire_train.manifest import Template, load_manifest, parse_manifest
from stepwire_train.records import load_episodes
from stepwire_train.render import render_observation, render_state, rtrim, target_text

COMPACT = REPO / "train" / "manifests" / "compact.toml"


def first_episode():
    eps, _ = load_episodes([EXPERT])
    return next(e for e in eps if e.id == "lockbox/find-key/train/18#0")


def test_real_record_lines_render_as_the_runtime_does():
    m = load_manifest(COMPACT)
    ep = first_episode()
    t = {(x["level"], x["step"]): x for x in ep.transitions}
    # Observation parts: "[inventory] you hold: " is trimmed to "you hold:".
    assert render_state(m, "low", t["low", 0]["state"]) == (
        "[act]\nSubtask:\nget the black key\nProgress:\nnone\nObservation:\n"
        "You are in a small room. Boxes here: gold, black.\n[inventory] you hold:\nAction:")
    assert render_state(m, "high", t["high", 0]["state"]) == (
        "[plan]\nTask:\nFind the gold key; it is in the black box.\nDone:\nnone\nLast:\nnone\n"
        "Observation:\nYou are in a small room. Boxes here: gold, black.\n[inventory] you hold:\n"
        "Subtask:")
    assert render_state(m, "high", t["high", 1]["state"]) == (
        "[plan]\nTask:\nFind the gold key; it is in the black box.\nDone:\nget the black key\n"
        "Last:\nlast: Done: take black key.\nObservation:\nDone: take black key. Boxes here: "
        "gold, black.\n[inventory] you hold: black key\nSubtask:")
    # The progress role fills {progress} with the previous progress.
    assert render_state(m, "progress", t["progress", 0]["state"]) == (
        "[progress]\nSubtask:\nget the black key\nProgress:\nnone\nAction:\ntake black key\n"
        "Observation:\nDone: take black key. Boxes here: gold, black.\n"
        "[inventory] you hold: black key\nProgress:")


def test_targets_carry_the_runtime_leading_space_and_low_format():
    m = load_manifest(COMPACT)
    ep = first_episode()
    samples = build_samples([ep], m, val_fraction=0.0)
    by = {(s["role"], s["step"]): s["target"] for s in samples}
    assert by["low", 0] == " take black key ||| done"
    assert by["high", 0] == " get the black key"
    assert by["progress", 0] == " last: Done: take black key."
    assert target_text("Action:\n", "x") == "x"


def test_edge_cases_whitespace_order_and_lists(tmp_path):
    m = load_manifest(COMPACT)
    obs = {"text": "\n  Room.\u00a0", "parts": {"zeta": " z ", "alpha": "\ta", "Beta": "b\u001f"}}
    # Byte order of part names ("B" < "a" < "z"); Rust's trim keeps U+001F, strips U+00A0.
    assert render_observation(obs) == "Room.\n[Beta] b\u001f\n[alpha] a\n[zeta] z"
    assert rtrim("\u001f x \u3000") == "\u001f x"
    st = {"task": "  t ", "completedSubtasks": ["  a ", "", " ", "b"], "lastProgress": " \n",
          "observation": {"text": "   "}}
    assert render_state(m, "high", st) == (
        "[plan]\nTask:\nt\nDone:\na; b\nLast:\nnone\nObservation:\nnone\nSubtask:")


def test_template_escapes_defaults_and_prefix(tmp_path):
    raw = {"generation": {"empty_field": "-", "list_separator": " | "},
           "templates": {"high": "{{x}} {task}\nDone:\n{completed_subtasks}\n{observation}",
                         "low": "{subtask}", "progress": "{previous_progress}/{progress}"}}
    m = parse_manifest(raw, tmp_path / "m.toml")
    st = {"task": "t", "completedSubtasks": ["a", "b"], "lastProgress": "",
          "observation": {"text": ""}}
    assert render_state(m, "high", st) == "{x} t\nDone:\na | b\n-"
    assert m.template("high").prefix() == "{x} "
    assert render_state(m, "progress", {"subtask": "s", "previousProgress": "p", "action": "a",
                                        "observation": {"text": "o"}}) == "p/p"
    assert Template("a {b} c").render({}, "none") == "a none c"
    for bad in ("a {b", "a {} b", "a } b", "a {b c} d"):
        with pytest.raises(ValueError):
            Template(bad)


def test_schema_examples_render():
    m = load_manifest(COMPACT)
    low = json.loads((REPO / "schemas/examples/record.line/low.json").read_text())
    assert render_state(m, "low", low["state"]) == (
        "[act]\nSubtask:\ntake the apple\nProgress:\nwent to countertop 1\nObservation:\n"
        "You are in the kitchen. You see a fridge 1 and a countertop 1.\n"
        "[inventory] You carry nothing.\nAction:")
