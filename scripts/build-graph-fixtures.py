#!/usr/bin/env python3
"""Build the decoder graphs that the load-time graph rewrites are tested on (no download).

The rewrites (runtime/onnx/src/graph/) must give exactly the export's logits and cache for any
architecture Optimum exports. The committed policy fixtures (models/) are Llama and Qwen2; this
script adds one tiny random-initialised decoder per other architecture family with its own
attention and mask code: Mistral (sliding window), Gemma (no position_ids), Gemma 2 (sliding
window, attention and final-logit soft-capping) and Phi-3 (fused projections). Each is exported
with optimum-onnx for `text-generation-with-past` into runtime/onnx/tests/data/archs/<name>.onnx
(about 100 KB each); runtime/onnx/tests/rewrites.rs compares every one rewritten and as exported.

Usage (from the repository root, in the venv of scripts/build-test-models.py):

    .cache/venv-models/bin/python scripts/build-graph-fixtures.py
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from optimum.exporters.onnx import main_export  # noqa: E402
from transformers import (  # noqa: E402
    Gemma2Config,
    Gemma2ForCausalLM,
    GemmaConfig,
    GemmaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Phi3Config,
    Phi3ForCausalLM,
)

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "runtime" / "onnx" / "tests" / "data" / "archs"
SEED = 20261125

# Small enough to commit, with grouped-query attention (4 heads sharing 2 key/value heads).
SIZES = dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
             bos_token_id=1, eos_token_id=2, pad_token_id=0)

ARCHS = {
    "mistral": lambda: (MistralConfig(**SIZES, sliding_window=16), MistralForCausalLM),
    "gemma": lambda: (GemmaConfig(**SIZES, head_dim=8), GemmaForCausalLM),
    "gemma2": lambda: (Gemma2Config(**SIZES, head_dim=8, sliding_window=16, final_logit_softcapping=30.0,
                                    attn_logit_softcapping=50.0), Gemma2ForCausalLM),
    "phi3": lambda: (Phi3Config(**SIZES), Phi3ForCausalLM),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="stepwire-archs-"))
    try:
        for name, make in ARCHS.items():
            config, cls = make()
            torch.manual_seed(SEED)
            model = cls(config).eval()
            hf_dir, onnx_dir = work / f"hf-{name}", work / f"onnx-{name}"
            model.save_pretrained(hf_dir)
            main_export(str(hf_dir), output=str(onnx_dir), task="text-generation-with-past",
                        device="cpu", do_validation=False, library_name="transformers")
            target = OUT / f"{name}.onnx"
            shutil.copyfile(onnx_dir / "model.onnx", target)
            print(f"{target.relative_to(REPO)}: {target.stat().st_size // 1024} KB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
