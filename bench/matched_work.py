"""The work every baseline loop of the large-model benchmark does, given its own
`generate(prompt_ids, new_tokens) -> (prefill seconds, seconds for the tokens after the first)`:
a warm-up, the prompt prefilled and N tokens decoded `repeats` times, then the agent step's calls
of stepwire-bench-large's work JSON (`step_work`), matched by work. Returns the timing fields of
the loop's JSON line."""

from __future__ import annotations

import statistics
from typing import Callable

Generate = Callable[[list[int], int], tuple[float, float]]


def measure(generate: Generate, work: dict, decode_tokens: int, repeats: int) -> dict:
    ids = work["prompt_ids"]
    generate(ids, 2)  # warm-up: first-run allocations
    prefill, per_token = [], []
    for _ in range(repeats):
        p, d = generate(ids, decode_tokens + 1)
        prefill.append(p)
        per_token.append(d / decode_tokens)
    steps: dict[int, float] = {}
    for call in work["step_work"]:
        p, d = generate(call["prompt_ids"], max(1, call["new_tokens"]))
        steps[call["step"]] = steps.get(call["step"], 0.0) + p + d
    return {
        "prefill_ms": round(statistics.median(prefill) * 1000, 2),
        "prefill_tok_s": round(len(ids) / statistics.median(prefill), 2),
        "decode_ms_per_token": round(statistics.median(per_token) * 1000, 3),
        "decode_tok_s": round(1 / statistics.median(per_token), 2),
        "step_ms": round(statistics.median(steps.values()) * 1000, 2) if steps else None,
    }
