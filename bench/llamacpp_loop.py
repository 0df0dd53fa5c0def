#!/usr/bin/env python3
"""llama.cpp (llama-cpp-python) on a GGUF file, doing the work `stepwire-bench-large` did, as
bench/genai_loop.py does for onnxruntime-genai: prefill the same prompt ids, decode N tokens
greedily, and the agent step's calls (each prompt with as many new tokens as stepwire generated;
matched by work, not by output). One JSON object on stdout. Runs in llama.cpp's own venv
(scripts/build-llamacpp.sh builds it).

    .cache/llamacpp/venv/bin/python bench/llamacpp_loop.py \\
        --model .cache/large/qwen2.5-0.5b-gguf-q4_0.gguf --threads 2 --work work.json

Every call starts from an empty KV cache (no prompt reuse between calls or repeats: the prompt's
tokens are all computed each time), the next token is the argmax of the last position's logits
(greedy), and end-of-sequence does not stop a call (the token counts are the work's)."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from matched_work import measure


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="a GGUF file")
    ap.add_argument("--threads", type=int, default=1, help="threads for decode and for prefill")
    ap.add_argument("--work", type=Path, required=True, help="stepwire-bench-large's JSON output")
    ap.add_argument("--decode-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-flash-attn", action="store_true",
                    help="llama.cpp's plain attention (its tools default to flash attention on CPU)")
    a = ap.parse_args()
    if not a.model.is_file():
        raise SystemExit(f"llamacpp_loop: {a.model} not found (scripts/build-llamacpp.sh makes it)")
    import numpy as np
    import llama_cpp

    work = json.loads(a.work.read_text())
    ids = work["prompt_ids"]
    longest = max([len(ids) + a.decode_tokens + 1]
                  + [len(c["prompt_ids"]) + c["new_tokens"] + 1 for c in work["step_work"]])
    t = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=str(a.model), n_ctx=longest, n_batch=max(512, longest), n_ubatch=512,
        n_threads=a.threads, n_threads_batch=a.threads, flash_attn=not a.no_flash_attn,
        logits_all=False, verbose=False)
    load_ms = (time.perf_counter() - t) * 1000
    n_vocab = llm.n_vocab()

    def greedy() -> int:
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))
        return int(logits.argmax())

    def generate(prompt: list[int], new_tokens: int) -> tuple[float, float]:
        """(prefill seconds, seconds for the tokens after the first)."""
        llm.reset()  # n_tokens = 0: eval() then drops every cached position
        t0 = time.perf_counter()
        llm.eval(prompt)
        tok = greedy()
        t1 = time.perf_counter()
        for _ in range(new_tokens - 1):
            llm.eval([tok])
            tok = greedy()
        return t1 - t0, time.perf_counter() - t1

    timings = measure(generate, work, a.decode_tokens, a.repeats)
    out = {
        "model": str(a.model), "threads": a.threads, "load_ms": round(load_ms, 2),
        "flash_attn": not a.no_flash_attn,
        **timings,
        # The GGUF is memory-mapped: its pages count once touched, as a loaded copy would.
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "llama_cpp_python": llama_cpp.__version__,
        "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
