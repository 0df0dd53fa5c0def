#!/usr/bin/env python3
"""Random-weight decoders with the exact shapes of real checkpoints, for the large-model benchmark
(scripts/bench-large.sh). Nothing is downloaded: each model is built from its published config
(hidden size, layers, heads, key/value heads, MLP size, vocabulary, RoPE, tied embeddings) with
random weights, exported with optimum-onnx (fp32, external data) and quantised to int4 with
`python -m stepwire_train quantize` (ONNX Runtime's MatMulNBits, block 32, accuracy level 4).

    .venv/bin/python scripts/build-large-models.py                       # both models
    .venv/bin/python scripts/build-large-models.py --only qwen2.5-0.5b   # one

Writes under .cache/large/ (never committed): <name>-hf (the random weights, safetensors),
<name>-fp32 and <name>-int4 (Optimum layout, policy folders stepwire serves), and
<name>-genai-fp32 and <name>-genai-int4 (onnxruntime-genai's model builder on the same weights:
GroupQueryAttention with a shared KV buffer, int4 MatMulNBits block 32, accuracy level 4). A folder
that is already complete is kept. Speed depends only on the shapes, so random weights measure what the
real checkpoint would cost; their outputs are noise.

The tokenizer is the fixtures' byte-level BPE (models/tiny-llama) with its vocabulary padded to
the model's by unreachable `<|unused_N|>` entries, so every id the model can emit decodes."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / ".cache" / "large"
TOKENIZER = REPO / "models" / "tiny-llama" / "tokenizer.json"
MANIFEST = REPO / "models" / "tiny-llama" / "stepwire.toml"
SEED = 20261202

# The published configs (config.json of Qwen/Qwen2.5-0.5B and meta-llama/Llama-3.2-1B), typed in
# here: shapes only, no weights. Special-token ids are the fixture tokenizer's.
CONFIGS = {
    "qwen2.5-0.5b": dict(
        architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=896,
        intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
        num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, hidden_act="silu",
        use_sliding_window=False, sliding_window=32768, max_window_layers=24,
    ),
    "llama-3.2-1b": dict(
        architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=2048,
        intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
        num_key_value_heads=8, head_dim=64, vocab_size=128256, max_position_embeddings=131072,
        rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=True, hidden_act="silu",
        attention_bias=False, mlp_bias=False,
        rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0,
                          high_freq_factor=4.0, original_max_position_embeddings=8192),
    ),
}
SPECIAL = dict(bos_token_id=1, eos_token_id=2, pad_token_id=3)


def log(msg: str) -> None:
    print(f"[build-large-models] {msg}", file=sys.stderr, flush=True)


def padded_tokenizer(vocab_size: int, dst: Path) -> None:
    """The fixture BPE with `<|unused_N|>` entries up to `vocab_size` ids (no merge reaches them;
    the byte-level decoder maps their ASCII characters to themselves)."""
    tok = json.loads(TOKENIZER.read_text())
    vocab = tok["model"]["vocab"]
    n = len(vocab) + len(tok.get("added_tokens", []))
    taken = set(vocab.values()) | {t["id"] for t in tok.get("added_tokens", [])}
    next_id = 0
    while len(taken) < vocab_size:
        while next_id in taken:
            next_id += 1
        vocab[f"<|unused_{next_id}|>"] = next_id
        taken.add(next_id)
    log(f"tokenizer: {n} ids padded to {vocab_size}")
    dst.write_text(json.dumps(tok, ensure_ascii=False))


TOKENIZER_CONFIG = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
                    "pad_token": "<pad>", "unk_token": "<unk>", "clean_up_tokenization_spaces": False}


def staged(dst: Path, make) -> None:
    """Runs make(staging folder) unless dst is complete; dst appears only when make succeeded."""
    if (dst / "stepwire.toml").exists():
        return
    staging = dst.with_name(dst.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    t0 = time.time()
    make(staging)
    shutil.copyfile(MANIFEST, staging / "stepwire.toml")
    shutil.rmtree(dst, ignore_errors=True)
    staging.rename(dst)
    log(f"{dst.name} ({time.time() - t0:.0f} s)")


def build(name: str, threads: int) -> None:
    hf, fp32 = OUT / f"{name}-hf", OUT / f"{name}-fp32"
    env = dict(os.environ, PYTHONPATH=str(REPO / "train"))

    def make_hf(staging: Path) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        spec = dict(CONFIGS[name])
        model_type = spec.pop("model_type")
        config = AutoConfig.for_model(model_type, **spec, **SPECIAL, torch_dtype="float32")
        torch.manual_seed(SEED)
        torch.set_num_threads(threads)
        with torch.no_grad():
            model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
        params = sum(p.numel() for p in model.parameters())
        log(f"{name}: random {model_type} model, {params / 1e6:.1f} M parameters, from its published config")
        model.save_pretrained(staging, safe_serialization=True)
        padded_tokenizer(config.vocab_size, staging / "tokenizer.json")
        (staging / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG))
        (staging / "build.json").write_text(json.dumps({
            "name": name, "parameters": params, "seed": SEED, "config": CONFIGS[name],
            "torch": torch.__version__}, indent=1))

    def make_optimum(staging: Path) -> None:
        from optimum.exporters.onnx import main_export

        log(f"{name}: exporting with optimum-onnx (text-generation-with-past, fp32)")
        # Optimum's post-processing (storing a tied LM head once) serialises the whole model
        # as one protobuf, which cannot exceed 2 GB; above that the head stays a copy.
        main_export(str(hf), output=str(staging), task="text-generation-with-past", device="cpu",
                    do_validation=False, library_name="transformers",
                    no_post_process=(hf / "model.safetensors").stat().st_size > 2_000_000_000)
        for f in staging.iterdir():
            if f.name not in {"model.onnx", "model.onnx_data", "config.json", "generation_config.json"}:
                f.unlink() if f.is_file() else shutil.rmtree(f)
        shutil.copyfile(hf / "tokenizer.json", staging / "tokenizer.json")

    def make_int4(staging: Path) -> None:
        subprocess.run([sys.executable, "-m", "stepwire_train", "quantize", "--model", str(fp32),
                        "--out", str(staging), "--bits", "4", "--block-size", "32",
                        "--accuracy-level", "4", "--no-check"], check=True, env=env)

    def make_genai(precision: str):
        def make(staging: Path) -> None:
            # onnxruntime-genai's model builder: GroupQueryAttention, fused QKV, MatMulNBits.
            cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(hf), "-o",
                   str(staging), "-p", precision, "-e", "cpu", "-c", str(staging / "cache")]
            if precision == "int4":
                cmd += ["--extra_options", "int4_accuracy_level=4", "int4_block_size=32"]
            subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
            shutil.rmtree(staging / "cache", ignore_errors=True)
        return make

    staged(hf, make_hf)
    staged(fp32, make_optimum)
    staged(OUT / f"{name}-int4", make_int4)
    staged(OUT / f"{name}-genai-fp32", make_genai("fp32"))
    staged(OUT / f"{name}-genai-int4", make_genai("int4"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=sorted(CONFIGS), action="append", help="build only this model")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for name in a.only or list(CONFIGS):
        build(name, a.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
