"""The skeleton in README.md is a working bridge."""
import re

from conftest import SDK_DIR


def test_readme_skeleton_is_a_working_bridge(spawn, tmp_path):
    readme = (SDK_DIR / "README.md").read_text(encoding="utf-8")
    code = re.search(r"## A bridge in 20 lines\n\n```python\n(.*?)```", readme, re.S).group(1)
    assert len(code.strip().splitlines()) <= 20
    script = tmp_path / "coin.py"
    script.write_text(f"import sys; sys.path.insert(0, {str(SDK_DIR)!r})\n" + code)
    b = spawn(script)
    caps = b.initialize()["capabilities"]["environment"]
    assert caps["name"] == "coin" and caps["seededReset"] and caps["observationParts"] == ["hand"]
    assert b.result(1, "env/reset", {"task": "flip", "split": "test", "seed": 1})["maxScore"] == 1
    b.error(2, "env/step", {"action": "eat coin"}, code=-31001)
    assert b.result(3, "env/step", {"action": "flip coin"})["won"]
    assert b.shutdown_and_exit() == 0
