"""The README's "Python host" example, run as written: a trained policy plays ScienceWorld."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import ROOT, pairs, record_lines, validator


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python host"):]
    section = section[:section.index("\n## ", 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the Python host section holds one python block"
    return blocks[0]


def test_the_readme_example_plays_scienceworld(binary, tmp_path):
    code = readme_example()
    assert len(code.strip().splitlines()) < 20
    (tmp_path / "models").symlink_to(ROOT / "models")  # the example names models/... from the root
    env = {**os.environ, "PYTHONPATH": str(ROOT / "hosts" / "python"), "STEPWIRE_BIN": binary}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    outcome, score, steps = run.stdout.split()
    lines = record_lines(tmp_path / "scienceworld.jsonl")
    check = validator("record.line.json")
    for line in lines:
        check.validate(line)
    transitions, episodes = pairs(lines)
    (summary,) = episodes
    assert (summary["outcome"], summary["score"], summary["steps"]) == (outcome, float(score), int(steps))
    assert 1 <= int(steps) <= 30 and summary["episode"]["task"] == "find-animal"
    assert sum(1 for t in transitions if t["level"] == "low") == int(steps)
    # The trained policy makes progress on this unseen game (it wins it at the time of writing).
    assert float(score) > 0
