#!/usr/bin/env python3
"""onnxruntime-genai's Python API on a model-builder folder (genai_config.json), doing the work
`stepwire-bench-large` did: prefill a prompt, decode N tokens greedily, and the agent step's calls
(each prompt with as many new tokens as stepwire generated; genai has no constrained decoding over
an action list, so the step is matched by work, not by output). One JSON object on stdout.

    .venv/bin/python bench/genai_loop.py --model .cache/large/qwen2.5-0.5b-genai-int4 \\
        --threads 2 --work work.json

`work.json` is stepwire-bench-large's output (prompt_ids, step_work)."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from matched_work import measure


def load(og, model: Path, threads: int):
    """The model with `threads` intra-op threads, set through a config overlay so that the
    model's own genai_config.json is left as it is."""
    config = og.Config(str(model))
    config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
    return og.Model(config)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, required=True, help="stepwire-bench-large's JSON output")
    ap.add_argument("--decode-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    import onnxruntime_genai as og

    work = json.loads(a.work.read_text())
    t = time.perf_counter()
    model = load(og, a.model, a.threads)
    load_ms = (time.perf_counter() - t) * 1000

    def generate(ids: list[int], new_tokens: int) -> tuple[float, float]:
        """(prefill seconds, seconds for the tokens after the first)."""
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=len(ids) + new_tokens + 1, do_sample=False)
        gen = og.Generator(model, params)
        t0 = time.perf_counter()
        # append_tokens runs the prompt through the model; the first generate_next_token only
        # picks a token from those logits (no model pass), so it belongs to the prefill, as the
        # first token does in the other runners' figures. Each later call is one decode pass.
        gen.append_tokens(ids)
        gen.generate_next_token()
        t1 = time.perf_counter()
        for _ in range(new_tokens - 1):
            gen.generate_next_token()
        return t1 - t0, time.perf_counter() - t1

    timings = measure(generate, work, a.decode_tokens, a.repeats)
    out = {
        "model": str(a.model), "threads": a.threads, "load_ms": round(load_ms, 2),
        **timings,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "onnxruntime_genai": og.__version__ if hasattr(og, "__version__") else None,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
