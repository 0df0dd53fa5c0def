#!/usr/bin/env python3
"""Large-model benchmark driver (scripts/bench-large.sh runs it): for every model folder and
thread count, stepwire (`stepwire-bench-large`, one process each) and the Python onnxruntime loop
(`bench/python_baseline.py`) on the same ~300-token prompt, one after the other in the same run,
with onnxruntime-genai on its model-builder folder (`bench/genai_loop.py`) and llama.cpp on a GGUF
of the same weights (`bench/llamacpp_loop.py`: f32 beside fp32, Q4_0 beside int4) doing the same
work; and this machine's memory bandwidth and GEMM rate, the limits decode and prefill are read
against. llama.cpp is skipped, with a note, when scripts/build-llamacpp.sh has not built it.

    .venv/bin/python bench/large.py --bench target/release/stepwire-bench-large \\
        --models .cache/large/qwen2.5-0.5b-fp32 .cache/large/qwen2.5-0.5b-int4 --threads 1 2

Writes OUT/results.json and OUT/results.md (the table in BENCHMARKS.md) and prints the table.

Read: decode bound = copy bandwidth / weight bytes one decode step reads (every weight but the
embedding table, of which a token reads one row); prefill GEMM fraction = the FLOPs of the prefill
pass's constant-weight matrix products (the LM head's for the last position only, as stepwire
runs it; attention's products, a few per cent at 300 tokens, not counted) over the prefill time /
the best GEMM rate ONNX Runtime reaches here on prefill-shaped products of both models' layer
sizes."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The GGUF beside each ONNX precision: f32, and Q4_0 (blocks of 32, symmetric) beside int4.
GGUF_TYPE = {"fp32": "f32", "int4": "q4_0"}


def run_json(cmd: list[str]) -> dict:
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"bench-large: {' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def python_loop(model: Path, threads: int, prompt: dict, decode_tokens: int, repeats: int) -> dict:
    """The Python onnxruntime loop on the same prompt: prefill (1 token) and decode, and its
    process's peak memory."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        f.write(json.dumps(prompt) + "\n")
    base = [sys.executable, str(REPO / "bench" / "python_baseline.py"), "--model", str(model),
            "--prompts", f.name, "--threads", str(threads), "--no-stop", "--json",
            "--iterations", str(repeats)]
    long = run_json(base + ["--max-new-tokens", str(decode_tokens + 1)])
    Path(f.name).unlink()
    prefill_ms = long["prefill_ms"]["median"]
    per_token_ms = long["per_token_ms"]["median"]
    return {"load_ms": long["load_ms"], "prefill_ms": prefill_ms,
            "decode_ms_per_token": per_token_ms, "decode_tok_s": round(1000 / per_token_ms, 2),
            "prompt_tokens": long.get("prompt_tokens_mean"),
            "peak_rss_mib": long["peak_rss_mib"]}


def stepwire(a, model: Path, t: int) -> dict:
    # Spinning intra-op threads, as onnxruntime's Python API and onnxruntime-genai do by default
    # (stepwire's own default is off, for machines whose cores other work shares).
    return run_json([a.bench, "--model", str(model), "--threads", str(t), "--decode-tokens",
                     str(a.decode_tokens), "--repeats", str(a.repeats), "--spinning"])


def llamacpp(a, gguf: Path, t: int, work: dict) -> dict:
    """llama-cpp-python on the GGUF, in its own venv, doing `work` (stepwire's output)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(work, f)
    out = run_json([a.llamacpp_python, str(REPO / "bench" / "llamacpp_loop.py"), "--model", str(gguf),
                    "--threads", str(t), "--work", f.name, "--decode-tokens", str(a.decode_tokens),
                    "--repeats", str(a.repeats)])
    Path(f.name).unlink()
    return out


RUNNERS = ("stepwire", "stepwire-builder", "genai", "python", "llamacpp")


def one_round(a, model: Path, genai: Path, gguf: Path | None, t: int) -> dict:
    """Every selected runner once, one after the other, on one model, precision and thread count."""
    run = {}
    if "stepwire" in a.runners:
        s = run["stepwire"] = stepwire(a, model, t)
        say(f"stepwire {model.name} x{t}: prefill {s['prefill_tok_s']} tok/s, decode {s['decode_tok_s']} tok/s, "
            f"step {s['step_ms']} ms, peak {s['peak_rss_mib']} MiB")
    has_builder = (genai / "genai_config.json").exists()
    if has_builder and "stepwire-builder" in a.runners:
        sg = run["stepwire_on_genai"] = stepwire(a, genai, t)
        say(f"stepwire {genai.name} x{t}: prefill {sg['prefill_tok_s']} tok/s, decode {sg['decode_tok_s']} tok/s, "
            f"step {sg['step_ms']} ms, peak {sg['peak_rss_mib']} MiB")
    # The baselines redo stepwire's work (its prompt ids and the tokens its agent step generated).
    work = run.get("stepwire") or run.get("stepwire_on_genai")
    if work is None:
        raise SystemExit("bench-large: --runners needs stepwire or stepwire-builder (the others redo its work)")
    if gguf and "llamacpp" in a.runners:
        lc = run["llamacpp"] = llamacpp(a, gguf, t, work)
        say(f"llama.cpp {gguf.name} x{t}: prefill {lc['prefill_tok_s']} tok/s, decode {lc['decode_tok_s']} tok/s, "
            f"step {lc['step_ms']} ms, peak {lc['peak_rss_mib']} MiB")
    if "python" in a.runners and "stepwire" in run:
        p = run["python"] = python_loop(model, t, work["prompt"], a.decode_tokens, a.repeats)
        say(f"python   {model.name} x{t}: prefill {p['prefill_ms']} ms, decode {p['decode_tok_s']} tok/s")
    if has_builder and "genai" in a.runners:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(work, f)
        g = run["genai"] = run_json([sys.executable, str(REPO / "bench" / "genai_loop.py"), "--model", str(genai),
                                     "--threads", str(t), "--work", f.name, "--decode-tokens", str(a.decode_tokens),
                                     "--repeats", str(a.repeats)])
        Path(f.name).unlink()
        say(f"genai    {genai.name} x{t}: prefill {g['prefill_tok_s']} tok/s, decode {g['decode_tok_s']} tok/s, "
            f"step {g['step_ms']} ms")
    return run


# The figures that are medians across rounds; every other field is the first round's.
SPEEDS = ("decode_tok_s", "prefill_tok_s", "step_ms", "peak_rss_mib", "load_ms", "prefill_ms", "decode_ms_per_token")
RUNNER_KEYS = ("stepwire", "stepwire_on_genai", "genai", "python", "llamacpp")


def measure(a, model: Path, genai: Path, gguf: Path | None, t: int) -> dict:
    """`--rounds` rounds of every runner back to back. On a shared machine the load moves speeds by
    10 % to 30 % within minutes; runners measured in the same round saw the same load, so ratios
    are taken within each round and their median reported (with the range) rather than a ratio of
    medians."""
    rounds = []
    for r in range(a.rounds):
        if a.rounds > 1:
            say(f"round {r + 1} of {a.rounds}: {model.name} x{t}")
        rounds.append(one_round(a, model, genai, gguf, t))
    row: dict = {"threads": t, "rounds": [{k: {f: run[k].get(f) for f in SPEEDS} for k in run} for run in rounds]}
    for key in RUNNER_KEYS:
        runs = [run[key] for run in rounds if run.get(key)]
        if not runs:
            row[key] = None
            continue
        merged = dict(runs[0])
        for f in SPEEDS:
            values = [x[f] for x in runs if x.get(f) is not None]
            if values:
                merged[f] = statistics.median(values)
        row[key] = merged
    return row


def say(msg: str) -> None:
    print(f"[bench-large] {msg}", file=sys.stderr, flush=True)


def paired(row: dict, a: str, b: str, field: str, invert: bool = False) -> str:
    """`a` against `b` on `field`: the median of the per-round ratios, with their range when there
    were several rounds ("-" when either runner is missing). `invert` for times (b / a: how many
    times faster a is)."""
    ratios = []
    for run in row["rounds"]:
        x, y = (run.get(a) or {}).get(field), (run.get(b) or {}).get(field)
        if x and y:
            ratios.append(y / x if invert else x / y)
    if not ratios:
        return "-"
    mid = f"{statistics.median(ratios):.2f}x"
    return mid if len(ratios) == 1 else f"{mid} ({min(ratios):.2f} to {max(ratios):.2f})"


def num(v, f: str = ".1f") -> str:
    return format(v, f) if v else "-"


def table(rows: list[dict], machine: dict) -> str:
    """Three tables: against the other runners, on the model-builder file, and against this
    machine's limits. Ratios are medians of per-round ratios (see `measure`)."""
    head = ("| model | threads | decode tok/s: stepwire / genai / Python / llama.cpp | stepwire vs genai, vs Python "
            "| prefill tok/s: stepwire / genai / Python / llama.cpp | agent step ms: stepwire / genai / llama.cpp "
            "| genai step / stepwire step | stepwire vs llama.cpp: decode, prefill, step |")
    out = [head, "|" + "---|" * 8]
    for r in rows:
        s = r["stepwire"]
        if not s:
            continue
        p, g, lc = r["python"] or {}, r["genai"] or {}, r.get("llamacpp") or {}
        py_prefill = s["prompt_tokens"] / (p["prefill_ms"] / 1000) if p else None
        out.append(
            f"| {Path(s['model']).name} | {r['threads']} "
            f"| {num(s['decode_tok_s'])} / {num(g.get('decode_tok_s'))} / {num(p.get('decode_tok_s'))} "
            f"/ {num(lc.get('decode_tok_s'))} "
            f"| {paired(r, 'stepwire', 'genai', 'decode_tok_s')}, {paired(r, 'stepwire', 'python', 'decode_tok_s')} "
            f"| {num(s['prefill_tok_s'], '.0f')} / {num(g.get('prefill_tok_s'), '.0f')} / {num(py_prefill, '.0f')} "
            f"/ {num(lc.get('prefill_tok_s'), '.0f')} "
            f"| {num(s['step_ms'], '.0f')} / {num(g.get('step_ms'), '.0f')} / {num(lc.get('step_ms'), '.0f')} "
            f"| {paired(r, 'stepwire', 'genai', 'step_ms', invert=True)} "
            f"| {paired(r, 'stepwire', 'llamacpp', 'decode_tok_s')}, {paired(r, 'stepwire', 'llamacpp', 'prefill_tok_s')}, "
            f"{paired(r, 'stepwire', 'llamacpp', 'step_ms', invert=True)} |")
    out += ["", "The model-builder file itself, stepwire against onnxruntime-genai's API on it:", "",
            "| file | threads | decode tok/s: stepwire / genai | prefill tok/s: stepwire / genai "
            "| agent step ms: stepwire / genai | peak RSS MiB: stepwire / genai |", "|" + "---|" * 6]
    for r in rows:
        sg, g = r.get("stepwire_on_genai"), r["genai"]
        if not (sg and g):
            continue
        out.append(
            f"| {Path(sg['model']).name} | {r['threads']} "
            f"| {sg['decode_tok_s']:.1f} / {g['decode_tok_s']:.1f} ({paired(r, 'stepwire_on_genai', 'genai', 'decode_tok_s')}) "
            f"| {sg['prefill_tok_s']:.0f} / {g['prefill_tok_s']:.0f} "
            f"({paired(r, 'stepwire_on_genai', 'genai', 'prefill_tok_s')}) "
            f"| {sg['step_ms']:.0f} / {g['step_ms']:.0f} ({paired(r, 'stepwire_on_genai', 'genai', 'step_ms', invert=True)} "
            f"faster) | {sg['peak_rss_mib']:.0f} / {g['peak_rss_mib']:.0f} |")
    out += ["", "| model | threads | load s | peak RSS MiB: stepwire / genai / Python / llama.cpp | weight MB read per token "
            "| decode: % of bandwidth bound | prefill: % of GEMM rate |", "|" + "---|" * 7]
    for r in rows:
        m = machine[r["threads"]]
        for s in (r["stepwire"], r.get("stepwire_on_genai")):
            if not s:
                continue
            p, g, lc = r["python"] or {}, r["genai"] or {}, r.get("llamacpp") or {}
            bound = m["copy_gb_s"] * 1e9 / s["weight_bytes_per_decode"]
            # The prefill pass's matrix products (its LM head for the last position only) over its time.
            flops = s.get("prefill_matmul_flops") or s["matmul_flops_per_token"] * s["prompt_tokens"]
            gflops = flops * s["prefill_tok_s"] / s["prompt_tokens"] / 1e9
            out.append(
                f"| {Path(s['model']).name} | {r['threads']} | {s['load_ms'] / 1000:.1f} "
                f"| {s['peak_rss_mib']:.0f} / {g.get('peak_rss_mib') or '-'} / {p.get('peak_rss_mib') or '-'} "
                f"/ {lc.get('peak_rss_mib') or '-'} "
                f"| {s['weight_bytes_per_decode'] / 1e6:.0f} "
                f"| {100 * s['decode_tok_s'] / bound:.0f} % of {bound:.1f} tok/s ({m['copy_gb_s']:.1f} GB/s copy) "
                f"| {100 * gflops / m['gemm_gflop_s']:.0f} % ({gflops:.0f} of {m['gemm_gflop_s']:.0f} GFLOP/s) |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="the stepwire-bench-large binary")
    ap.add_argument("--names", nargs="+", required=True, help="models under --root (scripts/build-large-models.py)")
    ap.add_argument("--precisions", nargs="+", default=["fp32", "int4"])
    ap.add_argument("--root", default=str(REPO / ".cache" / "large"))
    ap.add_argument("--runners", nargs="+", choices=RUNNERS, default=list(RUNNERS),
                    help="which runners (stepwire: on the Optimum export; stepwire-builder: on the model-builder "
                         "file; genai, python, llamacpp: the baselines); default all")
    ap.add_argument("--rounds", type=int, default=1,
                    help="runs of every runner, back to back, per model and thread count; ratios are the "
                         "median of the per-round ratios (more rounds: steadier ratios on a shared machine)")
    ap.add_argument("--no-genai", action="store_true", help="skip onnxruntime-genai")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--decode-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-python", action="store_true", help="skip the Python loop")
    ap.add_argument("--no-llamacpp", action="store_true", help="skip llama.cpp")
    ap.add_argument("--llamacpp-python", default=str(REPO / ".cache" / "llamacpp" / "venv" / "bin" / "python"),
                    help="the Python with llama-cpp-python (scripts/build-llamacpp.sh builds it)")
    ap.add_argument("--out", default=str(REPO / ".cache" / "bench-large"))
    a = ap.parse_args()
    skip = {"genai": a.no_genai, "python": a.no_python, "llamacpp": a.no_llamacpp}
    a.runners = [r for r in a.runners if not skip.get(r)]
    a.no_llamacpp = "llamacpp" not in a.runners
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    machine = {}
    for t in a.threads:
        machine[t] = run_json([a.bench, "--machine", "--threads", str(t)])
        print(f"[bench-large] machine, {t} thread(s): {machine[t]}", file=sys.stderr, flush=True)
    rows, notes = [], []
    if not a.no_llamacpp and not Path(a.llamacpp_python).exists():
        notes.append(f"llama.cpp skipped: {a.llamacpp_python} not found (scripts/build-llamacpp.sh builds it)")
        a.no_llamacpp = True
    for name in a.names:
        for precision in a.precisions:
            model = Path(a.root) / f"{name}-{precision}"
            genai = Path(a.root) / f"{name}-genai-{precision}"
            gguf = Path(a.root) / f"{name}-gguf-{GGUF_TYPE.get(precision, precision)}.gguf"
            if a.no_llamacpp:
                gguf = None
            elif not gguf.exists():
                notes.append(f"llama.cpp skipped for {name}-{precision}: {gguf} not found")
                gguf = None
            for t in a.threads:
                rows.append(measure(a, model, genai, gguf, t))
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None
    import onnxruntime
    for n in notes:
        say(n)
    lc_version = next((r["llamacpp"]["llama_cpp_python"] for r in rows if r.get("llamacpp")), None)
    result = {"machine": machine, "rows": rows, "notes": notes, "seconds": round(time.time() - t0, 1),
              "command": sys.argv, "rounds": a.rounds, "runners": a.runners,
              "loadavg_after": load, "host": platform.node(), "cpus": __import__("os").cpu_count(),
              "versions": {"onnxruntime": onnxruntime.__version__, "python": platform.python_version(),
                           "llama_cpp_python": lc_version}}
    (out / "results.json").write_text(json.dumps(result, indent=1))
    md = table(rows, machine) + "".join(f"\n\n{n}" for n in notes)
    (out / "results.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
