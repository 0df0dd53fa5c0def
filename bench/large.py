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
embedding table, of which a token reads one row); prefill GEMM fraction = the constant-weight
matrix products' FLOPs per token x prefill tokens/s / the GEMM rate ONNX Runtime reaches on a
prefill-shaped product here."""

from __future__ import annotations

import argparse
import json
import platform
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


def measure(a, model: Path, genai: Path, gguf: Path | None, t: int) -> dict:
    s = stepwire(a, model, t)
    say(f"stepwire {model.name} x{t}: prefill {s['prefill_tok_s']} tok/s, decode {s['decode_tok_s']} tok/s, "
        f"step {s['step_ms']} ms, peak {s['peak_rss_mib']} MiB")
    lc = None
    if gguf:
        lc = llamacpp(a, gguf, t, s)
        say(f"llama.cpp {gguf.name} x{t}: prefill {lc['prefill_tok_s']} tok/s, decode {lc['decode_tok_s']} tok/s, "
            f"step {lc['step_ms']} ms, peak {lc['peak_rss_mib']} MiB")
    p = None if a.no_python else python_loop(model, t, s["prompt"], a.decode_tokens, a.repeats)
    if p:
        say(f"python   {model.name} x{t}: prefill {p['prefill_ms']} ms, decode {p['decode_tok_s']} tok/s")
    g = sg = None
    if not a.no_genai and (genai / "genai_config.json").exists():
        sg = stepwire(a, genai, t)
        say(f"stepwire {genai.name} x{t}: prefill {sg['prefill_tok_s']} tok/s, decode {sg['decode_tok_s']} tok/s, "
            f"step {sg['step_ms']} ms, peak {sg['peak_rss_mib']} MiB")
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(s, f)
        g = run_json([sys.executable, str(REPO / "bench" / "genai_loop.py"), "--model", str(genai), "--threads",
                      str(t), "--work", f.name, "--decode-tokens", str(a.decode_tokens), "--repeats", str(a.repeats)])
        Path(f.name).unlink()
        say(f"genai    {genai.name} x{t}: prefill {g['prefill_tok_s']} tok/s, decode {g['decode_tok_s']} tok/s, "
            f"step {g['step_ms']} ms")
    return {"threads": t, "stepwire": s, "python": p, "genai": g, "stepwire_on_genai": sg, "llamacpp": lc}


def say(msg: str) -> None:
    print(f"[bench-large] {msg}", file=sys.stderr, flush=True)


def ratio(a: float, b: float | None) -> str:
    return f"{a / b:.2f}x" if b else "-"


def table(rows: list[dict], machine: dict) -> str:
    """Two tables: speed against the other runners, and against this machine's limits."""
    head = ("| model | threads | decode tok/s: stepwire / genai / Python / llama.cpp | stepwire vs genai, vs Python "
            "| prefill tok/s: stepwire / genai / Python / llama.cpp | agent step ms: stepwire / genai / llama.cpp "
            "| genai step / stepwire step | stepwire vs llama.cpp: decode, prefill, step |")
    out = [head, "|" + "---|" * 8]
    for r in rows:
        s, p, g, lc = r["stepwire"], r["python"] or {}, r["genai"] or {}, r.get("llamacpp") or {}
        py_prefill = s["prompt_tokens"] / (p["prefill_ms"] / 1000) if p else None
        num = lambda v, f=".1f": format(v, f) if v else "-"  # noqa: E731
        out.append(
            f"| {Path(s['model']).name} | {r['threads']} "
            f"| {num(s['decode_tok_s'])} / {num(g.get('decode_tok_s'))} / {num(p.get('decode_tok_s'))} "
            f"/ {num(lc.get('decode_tok_s'))} "
            f"| {ratio(s['decode_tok_s'], g.get('decode_tok_s'))}, {ratio(s['decode_tok_s'], p.get('decode_tok_s'))} "
            f"| {num(s['prefill_tok_s'], '.0f')} / {num(g.get('prefill_tok_s'), '.0f')} / {num(py_prefill, '.0f')} "
            f"/ {num(lc.get('prefill_tok_s'), '.0f')} "
            f"| {num(s['step_ms'], '.0f')} / {num(g.get('step_ms'), '.0f')} / {num(lc.get('step_ms'), '.0f')} "
            f"| {ratio(g['step_ms'], s['step_ms']) if g.get('step_ms') else '-'} "
            f"| {ratio(s['decode_tok_s'], lc.get('decode_tok_s'))}, {ratio(s['prefill_tok_s'], lc.get('prefill_tok_s'))}, "
            f"{ratio(lc['step_ms'], s['step_ms']) if lc.get('step_ms') else '-'} |")
    out += ["", "The model-builder file itself, stepwire against onnxruntime-genai's API on it:", "",
            "| file | threads | decode tok/s: stepwire / genai | prefill tok/s: stepwire / genai "
            "| agent step ms: stepwire / genai | peak RSS MiB: stepwire / genai |", "|" + "---|" * 6]
    for r in rows:
        sg, g = r.get("stepwire_on_genai"), r["genai"]
        if not (sg and g):
            continue
        out.append(
            f"| {Path(sg['model']).name} | {r['threads']} "
            f"| {sg['decode_tok_s']:.1f} / {g['decode_tok_s']:.1f} ({ratio(sg['decode_tok_s'], g['decode_tok_s'])}) "
            f"| {sg['prefill_tok_s']:.0f} / {g['prefill_tok_s']:.0f} ({ratio(sg['prefill_tok_s'], g['prefill_tok_s'])}) "
            f"| {sg['step_ms']:.0f} / {g['step_ms']:.0f} ({ratio(g['step_ms'], sg['step_ms'])} faster) "
            f"| {sg['peak_rss_mib']:.0f} / {g['peak_rss_mib']:.0f} |")
    out += ["", "| model | threads | load s | peak RSS MiB: stepwire / genai / Python / llama.cpp | weight MB read per token "
            "| decode: % of bandwidth bound | prefill: % of GEMM rate |", "|" + "---|" * 7]
    for r in rows:
        s, p, g, m = r["stepwire"], r["python"] or {}, r["genai"] or {}, machine[r["threads"]]
        lc = r.get("llamacpp") or {}
        bound = m["copy_gb_s"] * 1e9 / s["weight_bytes_per_decode"]
        gflops = s["matmul_flops_per_token"] * s["prefill_tok_s"] / 1e9
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
