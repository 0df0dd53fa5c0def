#!/usr/bin/env python3
"""Sums an ONNX Runtime profile (what `STEPWIRE_ORT_PROFILE=prefix` makes stepwire's sessions
write, or onnxruntime-genai's `enable_profiling`) per operator, over the model passes of one kind:
decode passes (one new token a row) by default, prefill passes with `--prefill`: time per pass,
share of the pass, calls per pass. With `--weight-bytes` (the bytes of the matrices one decode pass
reads: `weight_bytes_per_decode` of stepwire-bench-large's output) it also gives the rate the matrix
products stream their weights at, to read against the machine's memory bandwidth
(`stepwire-bench-large --machine`): how far the kernels themselves are from the bound.

    STEPWIRE_ORT_PROFILE=/tmp/sw target/release/stepwire-bench-large --model M --threads 2
    python3 bench/ort_profile.py /tmp/sw_*.json --weight-bytes 317289984

Only the standard library; one table on stdout (`--json` for a JSON object)."""

from __future__ import annotations

import argparse
import bisect
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def tokens_fed(node: dict) -> int | None:
    """New tokens a row of this pass: the ids' sequence length at the embedding lookup (a gather
    from a 2-D table by 2-D int64 ids), or None for any other node."""
    if "Gather" not in node["args"].get("op_name", ""):
        return None
    shapes = node["args"].get("input_type_shape") or []
    if len(shapes) < 2:
        return None
    (table,), (ids,) = shapes[0].values(), shapes[1].values()
    if len(table) == 2 and table[0] >= 1000 and "int64" in shapes[1] and len(ids) == 2:
        return ids[1]
    return None


# Operators that multiply by a weight matrix (what a decode pass streams from memory).
MATMULS = {"MatMul", "MatMulNBits", "Gemm", "FusedMatMul", "MatMulInteger", "DynamicQuantizeMatMul"}


def summarise(events: list[dict], prefill: bool) -> dict:
    runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    nodes = [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
    starts = [r["ts"] for r in runs]
    per_run: dict[int, list[dict]] = defaultdict(list)
    for n in nodes:
        i = bisect.bisect_right(starts, n["ts"]) - 1
        if i >= 0 and n["ts"] <= runs[i]["ts"] + runs[i]["dur"]:
            per_run[i].append(n)
    chosen = []
    for i, ns in per_run.items():
        fed = next((t for t in map(tokens_fed, ns) if t is not None), None)
        if fed is not None and (fed > 1) == prefill:
            chosen.append(i)
    if not chosen:
        raise SystemExit("ort_profile: no pass of that kind in the profile (or no embedding lookup found)")
    ops: dict[str, dict] = defaultdict(lambda: {"us": 0, "calls": 0})
    for i in chosen:
        for n in per_run[i]:
            op = ops[n["args"].get("op_name", "?")]
            op["us"] += n["dur"]
            op["calls"] += 1
    k = len(chosen)
    node_us = sum(o["us"] for o in ops.values())
    table = [{"op": name, "ms_per_pass": round(op["us"] / k / 1000, 3), "share": round(op["us"] / node_us, 4),
              "calls_per_pass": round(op["calls"] / k, 1)}
             for name, op in sorted(ops.items(), key=lambda kv: -kv[1]["us"])]
    run_ms = [runs[i]["dur"] / 1000 for i in chosen]
    return {
        "passes": k,
        "pass_ms_median": round(statistics.median(run_ms), 3),
        "node_ms_per_pass": round(node_us / k / 1000, 3),
        "matmul_ms_per_pass": round(sum(o["us"] for n, o in ops.items() if n in MATMULS) / k / 1000, 3),
        "ops": table,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("profile", type=Path, help="an ONNX Runtime profile (JSON trace)")
    ap.add_argument("--prefill", action="store_true", help="prefill passes instead of decode passes")
    ap.add_argument("--top", type=int, default=12, help="operators shown")
    ap.add_argument("--weight-bytes", type=float, help="bytes of the matrices one pass reads (for the rate)")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    a = ap.parse_args()
    s = summarise(json.loads(a.profile.read_text()), a.prefill)
    if a.weight_bytes and s["matmul_ms_per_pass"]:
        s["matmul_weight_gb_s"] = round(a.weight_bytes / (s["matmul_ms_per_pass"] * 1e6), 2)
    if a.json:
        print(json.dumps(s))
        return 0
    kind = "prefill" if a.prefill else "decode"
    print(f"{s['passes']} {kind} passes: median {s['pass_ms_median']} ms a pass, "
          f"{s['node_ms_per_pass']} ms of it in operators")
    print(f"{'operator':<34} {'ms/pass':>9} {'share':>7} {'calls':>7}")
    for o in s["ops"][: a.top]:
        print(f"{o['op']:<34} {o['ms_per_pass']:>9.3f} {100 * o['share']:>6.1f}% {o['calls_per_pass']:>7.0f}")
    if "matmul_weight_gb_s" in s:
        print(f"matrix products: {s['matmul_ms_per_pass']} ms a pass for {a.weight_bytes / 1e6:.0f} MB of weights: "
              f"{s['matmul_weight_gb_s']} GB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
