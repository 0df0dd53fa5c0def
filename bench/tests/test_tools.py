"""The benchmark's own tools: the per-operator profile summary (on a real ONNX Runtime profile of
the bundled tiny-llama) and the paired-round ratios of the large-model driver."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import onnxruntime as ort
import pytest

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))

import large  # noqa: E402
import ort_profile  # noqa: E402
from python_baseline import Policy  # noqa: E402

MODEL = BENCH.parent / "models" / "tiny-llama"


@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> Path:
    """A real profile: tiny-llama prefills a 20-token prompt, then decodes 4 tokens."""
    policy = Policy(MODEL, threads=1)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path_factory.mktemp("prof") / "tiny")
    onnx = MODEL / policy.manifest["model"]["onnx"]
    policy.sess = ort.InferenceSession(str(onnx), so, providers=["CPUExecutionProvider"])
    policy.eos_id = -1  # never stop early: exactly 5 passes
    out = policy.generate_ids([list(range(5, 25))], max_new_tokens=5, stop=[])
    assert len(out[0]) == 5
    return Path(policy.sess.end_profiling())


def test_decode_passes_are_told_from_prefill_ones(profile: Path) -> None:
    events = json.loads(profile.read_text())
    decode = ort_profile.summarise(events, prefill=False)
    prefill = ort_profile.summarise(events, prefill=True)
    assert (decode["passes"], prefill["passes"]) == (4, 1)
    ops = {o["op"]: o for o in decode["ops"]}
    assert "MatMul" in ops and ops["MatMul"]["calls_per_pass"] > 0
    assert sum(o["share"] for o in decode["ops"]) == pytest.approx(1.0, abs=0.01)
    assert 0 < decode["matmul_ms_per_pass"] <= decode["node_ms_per_pass"]
    # A 20-token pass costs more than a 1-token one.
    assert prefill["node_ms_per_pass"] > decode["node_ms_per_pass"]


def test_the_command_line_prints_the_table_and_the_weight_rate(profile: Path, capsys) -> None:
    sys.argv = ["ort_profile.py", str(profile), "--weight-bytes", "1e6"]
    assert ort_profile.main() == 0
    out = capsys.readouterr().out
    assert "4 decode passes" in out and "MatMul" in out and "GB/s" in out


def test_a_profile_without_such_passes_is_a_clear_error() -> None:
    with pytest.raises(SystemExit, match="no pass of that kind"):
        ort_profile.summarise([{"name": "model_run", "ts": 0, "dur": 5}], prefill=False)


def test_ratios_are_medians_of_per_round_ratios() -> None:
    # Round 2 ran under load for both runners: its ratio is like the others, its speeds are not.
    row = {"rounds": [
        {"stepwire_on_genai": {"decode_tok_s": 30.0, "step_ms": 100.0}, "genai": {"decode_tok_s": 30.0, "step_ms": 130.0}},
        {"stepwire_on_genai": {"decode_tok_s": 15.0, "step_ms": 200.0}, "genai": {"decode_tok_s": 14.0, "step_ms": 250.0}},
        {"stepwire_on_genai": {"decode_tok_s": 33.0, "step_ms": 90.0}, "genai": {"decode_tok_s": 30.0, "step_ms": 90.0}},
    ]}
    assert large.paired(row, "stepwire_on_genai", "genai", "decode_tok_s") == "1.07x (1.00 to 1.10)"
    assert large.paired(row, "stepwire_on_genai", "genai", "step_ms", invert=True) == "1.25x (1.00 to 1.30)"
    assert large.paired(row, "stepwire_on_genai", "llamacpp", "decode_tok_s") == "-"
    one = {"rounds": row["rounds"][:1]}
    assert large.paired(one, "stepwire_on_genai", "genai", "step_ms", invert=True) == "1.30x"


def test_rounds_merge_to_medians(monkeypatch) -> None:
    speeds = iter([10.0, 30.0, 20.0])
    monkeypatch.setattr(large, "one_round", lambda *_: {"stepwire": {"model": "m", "decode_tok_s": next(speeds)}})
    monkeypatch.setattr(large, "say", lambda _: None)
    row = large.measure(SimpleNamespace(rounds=3), Path("m"), Path("g"), None, 2)
    assert row["stepwire"]["decode_tok_s"] == 20.0 and row["genai"] is None
    assert [r["stepwire"]["decode_tok_s"] for r in row["rounds"]] == [10.0, 30.0, 20.0]
