"""Export of a tiny trained model: a policy folder whose onnxruntime greedy tokens equal
transformers', checked here again by an independent loop (bench/python_baseline.py)."""

import json
import subprocess
import sys
import tomllib

import pytest
from conftest import REPO

pytest.importorskip("torch")
pytestmark = pytest.mark.torch


def test_export_writes_a_checked_policy_folder(exported):
    out, res = exported
    for f in ("model.onnx", "tokenizer.json", "config.json", "stepwire.toml", "io.json",
              "expected.json"):
        assert (out / f).is_file(), f
    assert res["bytes"] < 20e6
    exp = json.loads((out / "expected.json").read_text())
    assert {p["role"] for p in exp["prompts"]} == {"high", "low", "progress"}
    assert len(exp["batches"]) >= 1 and exp["min_logit_gap"] >= 0.01
    m = tomllib.loads((out / "stepwire.toml").read_text())
    train_m = tomllib.loads((REPO / "train/manifests/compact.toml").read_text())
    assert m["templates"] == train_m["templates"] and m["low"] == train_m["low"]
    assert m["model"]["eos_token"] == "</s>"


def test_independent_onnxruntime_loop_agrees(exported):
    out, _ = exported
    r = subprocess.run([sys.executable, str(REPO / "bench/python_baseline.py"), "--model",
                        str(out), "--check", "--threads", "1"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_int8_copy_is_a_quantised_policy_folder(exported, work):
    d = work / "policy-int8"
    info = json.loads((d / "quantization.json").read_text())
    assert info["bits"] == 8 and info["matmul_nbits"] > 0
    assert 0.0 <= info["agreement"]["agreement"] <= 1.0
    assert (d / "model.onnx").stat().st_size < (exported[0] / "model.onnx").stat().st_size
