"""`quantize`: int4/int8 MatMulNBits copies of a bundled policy that stepwire serves as they are."""

import json
from collections import Counter

import onnx
import pytest
from conftest import REPO

from stepwire_train.__main__ import main

POLICY = REPO / "models" / "scienceworld-step-hrl"


@pytest.mark.parametrize("bits", [4, 8])
def test_quantises_every_weight_matmul_and_keeps_the_float_models_clear_decisions(tmp_path, capsys, bits):
    out = tmp_path / f"int{bits}"
    assert main(["quantize", "--model", str(POLICY), "--out", str(out), "--bits", str(bits)]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ops = Counter(n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node)
    # Every projection and the (tied) LM head: 4 layers x 7 + 1; only attention's two
    # activation-by-activation products per layer stay float.
    assert ops["MatMulNBits"] == res["matmul_nbits"] == 29 and res["untied_weights"] == 1
    assert ops["Transpose"] <= Counter(n.op_type for n in onnx.load(str(POLICY / "model.onnx")).graph.node)["Transpose"] - 1
    assert res["bytes_after"] < res["bytes_before"] / (2.5 if bits == 4 else 2)
    assert res["agreement"]["clear_positions"] >= 20 and res["agreement"]["agreement"] >= 0.95
    # A policy folder stepwire serves, with the quantised graph's own greedy tokens to check.
    for f in ("stepwire.toml", "tokenizer.json", "config.json", "quantization.json", "expected.json"):
        assert (out / f).is_file(), f
    exp = json.loads((out / "expected.json").read_text())
    assert exp["quantization"]["bits"] == bits and exp["quantization"]["from"] == POLICY.name
    assert exp["prompts"] and all(p["output_ids"] for p in exp["prompts"])


def test_bad_input_is_a_clear_error(tmp_path, caplog):
    assert main(["quantize", "--model", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "no stepwire.toml" in caplog.text
    assert main(["quantize", "--model", str(POLICY), "--out", str(POLICY)]) == 2
    assert "another folder" in caplog.text
