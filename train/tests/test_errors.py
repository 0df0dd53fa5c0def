"""Invalid recordings and manifests fail with messages that say where and what."""

import json

import pytest
from conftest import EXPERT

from stepwire_train.__main__ import main
from stepwire_train.manifest import load_manifest
from stepwire_train.records import load_episodes
from stepwire_train.util import UserError


def broken_copy(tmp_path, edit):
    lines = EXPERT.read_text().splitlines()
    lines[4] = edit(lines[4])
    p = tmp_path / "broken.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


def drop_action(line):
    obj = json.loads(line)
    obj.pop("action", None)
    obj.pop("subtask", None)
    obj.pop("progress", None)
    return json.dumps(obj)


def test_invalid_line_names_file_line_and_complaint(tmp_path):
    p = broken_copy(tmp_path, drop_action)
    with pytest.raises(UserError) as e:
        load_episodes([p])
    msg = str(e.value)
    assert f"{p}:5:" in msg and "is a required property" in msg and "--skip-invalid" in msg


def test_not_json_and_skip_invalid(tmp_path):
    p = broken_copy(tmp_path, lambda line: line[:40])
    with pytest.raises(UserError, match=r":5: invalid record line: not JSON"):
        load_episodes([p])
    eps, stats = load_episodes([p], skip_invalid=True)
    assert stats.invalid == 1 and len(eps) == 16


def test_wrong_type_points_at_the_field(tmp_path):
    def bad_reward(line):
        obj = json.loads(line)
        obj["reward"] = "high"
        return json.dumps(obj)

    with pytest.raises(UserError, match=r"'high' is not of type 'number' \(at reward\)"):
        load_episodes([broken_copy(tmp_path, bad_reward)])


def test_manifest_without_templates_is_a_clear_error(tmp_path):
    p = tmp_path / "m.toml"
    p.write_text('[generation]\nstop = ["\\n"]\n')
    with pytest.raises(UserError, match=r"no \[templates\] table"):
        load_manifest(p)
    p.write_text("[templates]\nhigh = '{task}'\nlow = '{subtask}'\n")
    with pytest.raises(UserError, match=r"templates.progress: missing"):
        load_manifest(p)
    p.write_text("[templates]\nlow = '{task}'\n")
    with pytest.raises(UserError, match=r"unknown placeholder \{task\}"):
        load_manifest(p, roles=["low"])


def test_cli_reports_errors_as_a_log_line_with_exit_2(tmp_path, capsys, caplog):
    p = tmp_path / "m.toml"
    p.write_text("[generation]\n")
    rc = main(["dataset", "--records", str(EXPERT), "--out", str(tmp_path / "d"),
               "--manifest", str(p)])
    assert rc == 2 and capsys.readouterr().out == "" and "no [templates] table" in caplog.text


def test_fast_branch_validation_agrees_with_the_whole_schema():
    from stepwire_train.records import _validator, is_valid

    full = _validator()
    lines = [json.loads(x) for x in EXPERT.read_text().splitlines()[:12]]
    variants = []
    for obj in lines:
        variants.append(obj)
        for k in list(obj):
            variants.append({x: y for x, y in obj.items() if x != k})
            for bad in (None, 3, "x", [], {}):
                variants.append({**obj, k: bad})
        for k in ("high", "low", "progress", "middle"):
            variants.append({**obj, "level": k})
        for k in ("transition", "episode", "other"):
            variants.append({**obj, "kind": k})
        st = obj.get("state")
        if isinstance(st, dict):
            for k in list(st):
                variants.append({**obj, "state": {x: y for x, y in st.items() if x != k}})
    assert len(variants) > 500
    for v in variants:
        assert is_valid(v) == full.is_valid(v), v



def test_the_scienceworld_manifest_writes_actions_freely_and_exports_so(tmp_path):
    from pathlib import Path

    from stepwire_train.manifest import runtime_tables

    manifests = Path(__file__).resolve().parents[1] / "manifests"
    m = load_manifest(manifests / "scienceworld.toml")
    assert m.admissible is False
    assert "admissible = false" in runtime_tables(m)
    compact = (manifests / "compact.toml").read_text()
    assert "admissible" not in runtime_tables(load_manifest(manifests / "compact.toml"))
    p = tmp_path / "m.toml"
    p.write_text(compact.replace('continue_token = "continue"', 'continue_token = "continue"\nadmissible = "no"'))
    with pytest.raises(UserError, match=r"low.admissible: must be true or false"):
        load_manifest(p)
