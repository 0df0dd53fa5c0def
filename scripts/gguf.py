#!/usr/bin/env python3
"""A Hugging Face checkpoint to GGUF, for llama.cpp in the large-model benchmark
(scripts/build-llamacpp.sh runs both steps; each writes OUT only when it succeeded).

    .venv/bin/python scripts/gguf.py convert --converter .cache/llamacpp/llama_cpp_python-0.3.36/vendor/llama.cpp \\
        --model .cache/large/qwen2.5-0.5b-hf --out .cache/large/qwen2.5-0.5b-gguf-f32.gguf
    .cache/llamacpp/venv/bin/python scripts/gguf.py quantize \\
        --model .cache/large/qwen2.5-0.5b-gguf-f32.gguf --out .cache/large/qwen2.5-0.5b-gguf-q4_0.gguf

`convert` runs the converter llama.cpp ships (convert_hf_to_gguf.py, with its own gguf-py) in a
Python that has torch and transformers. `quantize` runs llama.cpp's quantiser through
llama-cpp-python: Q4_0 (blocks of 32 weights, one scale each, symmetric) on every matrix, the
token embedding / tied LM head included, as the ONNX int4 models quantise theirs."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("gguf")


def byte_level_gpt2(model_dir: Path) -> bool:
    """Whether the checkpoint's tokenizer.json splits text as GPT-2 does: a ByteLevel
    pre-tokenizer with GPT-2's regex and no prefix space."""
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        return False
    pre = json.loads(path.read_text()).get("pre_tokenizer") or {}
    return (pre.get("type") == "ByteLevel" and pre.get("use_regex", True)
            and not pre.get("add_prefix_space", False))


def convert(converter: Path, model: Path, out: Path) -> None:
    script = converter / "convert_hf_to_gguf.py"
    if not script.is_file():
        raise SystemExit(f"gguf: {script} not found (scripts/build-llamacpp.sh unpacks it)")
    sys.path.insert(0, str(converter))
    import convert_hf_to_gguf  # noqa: F401  (puts the vendored gguf-py on sys.path first)
    from conversion.base import TextModel

    # The converter names a BPE tokenizer's pre-tokenizer by hashing its output on a test text and
    # looking the hash up among published models'; the benchmark's tokenizer (the fixture BPE
    # padded to the model's vocabulary) is none of them. When tokenizer.json itself says the split
    # is GPT-2's, that is the name llama.cpp knows it by.
    known = TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self, tokenizer) -> str:
        try:
            return known(self, tokenizer)
        except NotImplementedError:
            if not byte_level_gpt2(Path(self.dir_model)):
                raise
            log.warning("tokenizer.json: ByteLevel pre-tokenizer with GPT-2's regex -> 'gpt-2'")
            return "gpt-2"

    TextModel.get_vocab_base_pre = get_vocab_base_pre
    partial = out.with_name(out.name + ".partial")
    sys.argv = [str(script), str(model), "--outtype", "f32", "--outfile", str(partial)]
    convert_hf_to_gguf.main()
    partial.rename(out)


def quantize(model: Path, out: Path, threads: int) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0
    params.nthread = threads
    # Q4_0 everywhere: by default llama.cpp keeps the output / tied embedding matrix at Q6_K (Q8_0
    # when its rows are no multiple of 256, as Qwen's 896), where the ONNX int4 has it at 4 bits.
    params.pure = True
    partial = out.with_name(out.name + ".partial")
    rc = llama_cpp.llama_model_quantize(str(model).encode(), str(partial).encode(), params)
    if rc != 0:
        partial.unlink(missing_ok=True)
        raise SystemExit(f"gguf: llama_model_quantize({model}) returned {rc}")
    partial.rename(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="HF checkpoint -> GGUF f32 (needs torch, transformers)")
    c.add_argument("--converter", type=Path, required=True, help="llama.cpp's source folder")
    c.add_argument("--model", type=Path, required=True, help="HF checkpoint folder")
    c.add_argument("--out", type=Path, required=True)
    q = sub.add_parser("quantize", help="GGUF f32 -> GGUF Q4_0 (needs llama-cpp-python)")
    q.add_argument("--model", type=Path, required=True)
    q.add_argument("--out", type=Path, required=True)
    q.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="[gguf] %(message)s")
    if not a.model.exists():
        raise SystemExit(f"gguf: {a.model} not found")
    if a.cmd == "convert":
        convert(a.converter.resolve(), a.model, a.out)
    else:
        quantize(a.model, a.out, a.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
