#!/usr/bin/env python3
"""The loop a user would write instead of stepwire: onnxruntime + tokenizers + numpy.

Loads a stepwire model directory (stepwire.toml, model.onnx in the Optimum
`text-generation-with-past` layout, tokenizer.json), renders prompts from the manifest's
templates, and decodes greedily with the KV cache, stopping on EOS, a stop string or the token
limit. Prints latency statistics, as JSON with --json, so a benchmark harness can run it as a
subprocess next to stepwire and compute ratios.

    python bench/python_baseline.py --model models/tiny-llama --iterations 20 --json
    python bench/python_baseline.py --model models/tiny-llama --batch 4 --json
    python bench/python_baseline.py --model models/tiny-llama --concurrency 2 --json
    python bench/python_baseline.py --model models/tiny-llama --check   # vs expected.json
    python bench/python_baseline.py --model models/tiny-llama --steps steps.jsonl  # act + progress

Needs only onnxruntime, tokenizers and numpy (requirements/runtime.txt).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import threading
import time
import tomllib
from pathlib import Path

try:
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer
except ImportError as e:  # pragma: no cover
    sys.exit(f"python_baseline: {e}; install onnxruntime, tokenizers and numpy "
             "(pip install -r requirements/runtime.txt)")

# Field values for the built-in prompts, rendered with the manifest's templates.
BUILTIN_FIELDS = [
    ("high_long", "high", {
        "task": "heat some egg and put it in garbagecan.",
        "completed_subtasks": "find the egg; take the egg",
        "last_progress": "I took egg 2 from countertop 3. I am holding the egg.",
        "observation": (
            "You are in the middle of a room. Looking quickly around you, you see a cabinet 1, "
            "a cabinet 2, a cabinet 3, a cabinet 4, a cabinet 5, a cabinet 6, a coffeemachine 1, "
            "a countertop 1, a countertop 2, a countertop 3, a drawer 1, a drawer 2, a drawer 3, "
            "a fridge 1, a garbagecan 1, a microwave 1, a shelf 1, a shelf 2, a shelf 3, a "
            "sinkbasin 1, a stoveburner 1, a stoveburner 2, a stoveburner 3, a stoveburner 4, "
            "and a toaster 1. On the countertop 2, you see a apple 1, a bread 1, a butterknife "
            "2, a cellphone 1, a creditcard 1, a knife 1, a lettuce 2, a mug 2, a peppershaker "
            "1, a potato 3, and a spoon 1."),
    }),
    ("low_kitchen", "low", {
        "subtask": "take the apple",
        "progress": "I went to countertop 2 and saw apple 1.",
        "observation": "On the countertop 2, you see a apple 1, a bread 1, and a mug 2.",
    }),
    ("progress_fridge", "progress", {
        "subtask": "cool the apple",
        "progress": "I am holding apple 1. I need to go to the fridge.",
        "action": "go to fridge 1",
        "observation": "You arrive at fridge 1. The fridge 1 is closed.",
    }),
    ("high_start", "high", {
        "task": "put a clean mug in coffeemachine.",
        "completed_subtasks": "none",
        "last_progress": "Nothing has been done yet.",
        "observation": "You are in the middle of a kitchen. You see a sinkbasin 1 and a mug 1.",
    }),
]


class Policy:
    """One model directory: session, tokenizer, manifest; greedy decoding with the KV cache."""

    def __init__(self, model_dir: Path, threads: int = 0):
        manifest_path = model_dir / "stepwire.toml"
        if not manifest_path.is_file():
            raise SystemExit(f"python_baseline: {manifest_path} not found")
        self.manifest = tomllib.loads(manifest_path.read_text())
        m = self.manifest["model"]
        self.tok = Tokenizer.from_file(str(model_dir / m["tokenizer"]))
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
        self.sess = ort.InferenceSession(str(model_dir / m["onnx"]), so,
                                         providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.sess.get_inputs()}
        self.output_names = [o.name for o in self.sess.get_outputs()]
        self.past_names = [i.name for i in self.sess.get_inputs()
                           if i.name.startswith("past_key_values.")]
        shape = next(i.shape for i in self.sess.get_inputs() if i.name == self.past_names[0])
        self.kv_heads, self.head_dim = int(shape[1]), int(shape[3])
        self.eos_id = self._token_id(m["eos_token"])
        self.bos_id = self._token_id(m["bos_token"])
        self.pad_id = self._token_id(m.get("pad_token", m["eos_token"]))
        self.stop = list(self.manifest.get("generation", {}).get("stop", []))

    def _token_id(self, token: str) -> int:
        i = self.tok.token_to_id(token)
        if i is None:
            raise SystemExit(f"python_baseline: token {token!r} is not in the tokenizer")
        return i

    def render(self, role: str, fields: dict) -> str:
        return self.manifest["templates"][role].format(**fields)

    def encode(self, text: str) -> list[int]:
        ids = self.tok.encode(text).ids
        if not ids or ids[0] != self.bos_id:
            ids = [self.bos_id] + ids
        return ids

    def _run(self, ids, mask, pos, past):
        feed = {"input_ids": ids, "attention_mask": mask, **past}
        if "position_ids" in self.input_names:
            feed["position_ids"] = pos
        return dict(zip(self.output_names, self.sess.run(self.output_names, feed)))

    def generate_ids(self, rows: list[list[int]], max_new_tokens: int, stop: list[str],
                     timing: dict | None = None) -> list[list[int]]:
        """Greedy decode of one or more prompts (left-padded); returns the new ids per row
        (without padding, cut at EOS, stop strings removed from the end by the caller)."""
        b = len(rows)
        width = max(len(r) for r in rows)
        ids = np.full((b, width), self.pad_id, dtype=np.int64)
        mask = np.zeros((b, width), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, width - len(r):] = r
            mask[i, width - len(r):] = 1
        pos = np.cumsum(mask, axis=1) - 1
        pos[mask == 0] = 1
        past = {n: np.zeros((b, self.kv_heads, 0, self.head_dim), dtype=np.float32)
                for n in self.past_names}
        out: list[list[int]] = [[] for _ in range(b)]
        live = [True] * b
        t0 = time.perf_counter()
        for step in range(max_new_tokens):
            res = self._run(ids, mask, pos, past)
            if step == 0 and timing is not None:
                timing["prefill_s"] = time.perf_counter() - t0
            nxt = res["logits"][:, -1, :].argmax(axis=1)
            for i in range(b):
                if not live[i]:
                    continue
                t = int(nxt[i])
                if t == self.eos_id:
                    live[i] = False
                    continue
                out[i].append(t)
                if stop and any(s in self.tok.decode(out[i]) for s in stop):
                    live[i] = False
            if not any(live):
                break
            past = {n: res["present" + n[len("past_key_values"):]] for n in self.past_names}
            nxt = np.where(live, nxt, self.pad_id).astype(np.int64)
            mask = np.concatenate([mask, np.ones((b, 1), dtype=np.int64)], axis=1)
            ids = nxt[:, None]
            pos = pos[:, -1:] + 1
        return out

    def encode_plain(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def action_trie(self, actions: list[str], lead: str) -> list[dict]:
        """Token trie over every admissible low-level output, by stepwire's rules:
        `<lead><action><sep><done|continue>` and `<lead><action></s>`; a shorter output that
        ends where a longer one continues wins."""
        low = self.manifest.get("low", {})
        sep = low.get("done_separator", " ||| ")
        done, cont = low.get("done_token", "done"), low.get("continue_token", "continue")
        nodes = [{"children": {}, "end": False}]

        def insert(ids):
            node = 0
            for t in ids:
                if nodes[node]["end"]:
                    return
                child = nodes[node]["children"].get(t)
                if child is None:
                    nodes.append({"children": {}, "end": False})
                    child = nodes[node]["children"][t] = len(nodes) - 1
                node = child
            if not nodes[node]["children"]:
                nodes[node]["end"] = True

        seen = set()
        for a in actions:
            if not a.strip() or a in seen:
                continue
            seen.add(a)
            insert(self.encode_plain(f"{lead}{a}{sep}{done}"))
            insert(self.encode_plain(f"{lead}{a}{sep}{cont}"))
            insert(self.encode_plain(f"{lead}{a}") + [self.eos_id])
        for n in nodes:
            n["allowed"] = np.array(sorted(n["children"]), dtype=np.int64)
        return nodes

    def generate_constrained(self, prompt: str, actions: list[str]) -> list[int]:
        """Greedy decoding restricted to the trie, one model pass per token (EOS excluded)."""
        lead = "" if prompt[-1:].isspace() else " "
        trie = self.action_trie(actions, lead)
        ids = np.array([self.encode(prompt)], dtype=np.int64)
        mask = np.ones_like(ids)
        pos = np.arange(ids.shape[1], dtype=np.int64)[None, :]
        past = {n: np.zeros((1, self.kv_heads, 0, self.head_dim), dtype=np.float32)
                for n in self.past_names}
        node, out = 0, []
        while True:
            res = self._run(ids, mask, pos, past)
            allowed = trie[node]["allowed"]
            t = int(allowed[int(res["logits"][0, -1, allowed].argmax())])
            node = trie[node]["children"][t]
            if t != self.eos_id:
                out.append(t)
            if trie[node]["end"]:
                return out
            past = {n: res["present" + n[len("past_key_values"):]] for n in self.past_names}
            mask = np.ones((1, mask.shape[1] + 1), dtype=np.int64)
            ids = np.array([[t]], dtype=np.int64)
            pos = pos[:, -1:] + 1

    def complete(self, prompts: list[str], max_new_tokens: int, use_stop: bool = True,
                 timing: dict | None = None) -> list[tuple[str, list[int]]]:
        """Text in, text out: what one policy call costs a user (tokenize, decode, detokenize)."""
        stop = self.stop if use_stop else []
        rows = [self.encode(p) for p in prompts]
        outs = self.generate_ids(rows, max_new_tokens, stop, timing)
        results = []
        for o in outs:
            text = self.tok.decode(o)
            for s in stop:
                if s in text:
                    text = text[: text.index(s)]
            results.append((text, o))
        if timing is not None:
            timing["prompt_tokens"] = sum(len(r) for r in rows)
        return results


def load_prompts(policy: Policy, spec: str, model_dir: Path) -> list[tuple[str, str]]:
    if spec == "builtin":
        return [(n, policy.render(r, f)) for n, r, f in BUILTIN_FIELDS]
    if spec == "expected":
        exp = json.loads((model_dir / "expected.json").read_text())
        return [(p["name"], p["prompt"]) for p in exp["prompts"]]
    prompts = []
    with open(spec) as f:
        for n, line in enumerate(f):
            line = line.strip()
            if not line:
                continue
            obj = json.loads(line)
            if isinstance(obj, str):
                prompts.append((f"line{n}", obj))
            elif "prompt" in obj:
                prompts.append((obj.get("name", f"line{n}"), obj["prompt"]))
            elif "role" in obj and "fields" in obj:
                prompts.append((obj.get("name", f"line{n}"),
                                policy.render(obj["role"], obj["fields"])))
            else:
                raise SystemExit(f"python_baseline: {spec}:{n + 1}: need \"prompt\" or "
                                 "\"role\"+\"fields\"")
    if not prompts:
        raise SystemExit(f"python_baseline: no prompts in {spec}")
    return prompts


def load_step_cases(policy: Policy, path: str) -> list[tuple]:
    """Step cases, one per line of `path`: {"name", "low": {"fields", "actions"}, "progress":
    {"fields"}} -> (name, low prompt, actions, progress prompt)."""
    cases = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [(c["name"], policy.render("low", c["low"]["fields"]), c["low"]["actions"],
             policy.render("progress", c["progress"]["fields"])) for c in cases]


def step_case(policy: Policy, case: tuple, max_new_tokens: int) -> dict:
    """One agent step: a constrained `low` call (the act), then a free `progress` call."""
    _, low, actions, prog = case
    t0 = time.perf_counter()
    act = policy.generate_constrained(low, actions)
    t1 = time.perf_counter()
    _, prog_ids = policy.complete([prog], max_new_tokens, use_stop=False)[0]
    t2 = time.perf_counter()
    return {"act_s": t1 - t0, "step_s": t2 - t0, "act": act, "progress": prog_ids}


def run_steps(policy: Policy, path: str, iterations: int, warmup: int,
              max_new_tokens: int) -> dict:
    """Times every step case of `path` `iterations` times."""
    work = load_step_cases(policy, path)
    act_s, step_s, outputs = [], [], {}
    for it in range(warmup + iterations):
        for case in work:
            r = step_case(policy, case, max_new_tokens)
            if it >= warmup:
                act_s.append(r["act_s"])
                step_s.append(r["step_s"])
            outputs[case[0]] = {"act": r["act"], "progress": r["progress"]}
    return {"runner": "python_baseline", "mode": "steps", "calls": len(act_s),
            "act_ms": stats_ms(act_s), "step_ms": stats_ms(step_s), "outputs": outputs}


def serve(policy: Policy, prompts: list[tuple[str, str]], steps: str | None,
          max_new_tokens: int) -> int:
    """One call per JSON line on stdin, answered with its own timing on stdout, so a harness
    can alternate its calls with these and both meet the same machine load:
    {"act": name} -> {"s"} (free generation, stop strings off); {"step": name} -> the step."""
    acts = dict(prompts)
    cases = {c[0]: c for c in load_step_cases(policy, steps)} if steps else {}
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if "act" in req:
            t0 = time.perf_counter()
            ids = policy.complete([acts[req["act"]]], max_new_tokens, use_stop=False)[0][1]
            out = {"s": time.perf_counter() - t0, "ids": ids}
        else:
            out = step_case(policy, cases[req["step"]], max_new_tokens)
        print(json.dumps(out), flush=True)
    return 0


def stats_ms(xs: list[float]) -> dict:
    a = np.asarray(xs) * 1000.0
    return {"median": round(float(np.median(a)), 3), "p90": round(float(np.percentile(a, 90)), 3),
            "mean": round(float(a.mean()), 3), "min": round(float(a.min()), 3),
            "max": round(float(a.max()), 3)}


def check(policy: Policy, model_dir: Path) -> int:
    """Compare against expected.json (greedy ids from transformers, no stop strings)."""
    exp = json.loads((model_dir / "expected.json").read_text())
    n_max = exp["generation"]["max_new_tokens"]
    bad = 0
    for p in exp["prompts"]:
        ids = policy.encode(p["prompt"])
        got = policy.generate_ids([ids], n_max, [])[0]
        want = [t for t in p["output_ids"] if t != policy.eos_id]
        ok = ids == p["prompt_ids"] and got == want
        bad += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {p['name']}", file=sys.stderr)
    for bt in exp["batches"]:
        rows = [[t for t, m in zip(r, mk) if m] for r, mk in zip(bt["input_ids"],
                                                                bt["attention_mask"])]
        got = policy.generate_ids(rows, n_max, [])
        want = [[t for t in r if t not in (policy.eos_id, policy.pad_id)]
                for r in bt["output_ids"]]
        ok = got == want
        bad += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {bt['name']} (left-padded batch of {len(rows)})",
              file=sys.stderr)
    print(f"{len(exp['prompts']) + len(exp['batches']) - bad} passed, {bad} failed")
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description="Python onnxruntime baseline for stepwire benches")
    ap.add_argument("--model", type=Path, required=True, help="model directory (stepwire.toml)")
    ap.add_argument("--prompts", default="builtin",
                    help="'builtin' (manifest templates + fixed fields), 'expected' (the "
                         "prompts of expected.json), or a JSONL file of strings, "
                         "{\"prompt\": ...} or {\"role\": ..., \"fields\": {...}}")
    ap.add_argument("--max-new-tokens", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=10,
                    help="passes over the prompt set (each prompt is one call per pass)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed passes first")
    ap.add_argument("--threads", type=int, default=0,
                    help="onnxruntime intra-op threads (0 = onnxruntime's default)")
    ap.add_argument("--batch", type=int, default=1,
                    help="prompts per call, left-padded into one batch")
    ap.add_argument("--concurrency", type=int, default=1,
                    help="threads issuing calls at once on one shared session")
    ap.add_argument("--no-stop", action="store_true",
                    help="ignore the manifest's stop strings (stop only on EOS or the limit)")
    ap.add_argument("--json", action="store_true", help="print the statistics as JSON")
    ap.add_argument("--steps", metavar="JSONL",
                    help="agent-step mode: each line {name, low: {fields, actions}, progress: "
                         "{fields}}; times a constrained act and act + progress")
    ap.add_argument("--serve", action="store_true",
                    help="answer one call per stdin line ({\"act\": name} or {\"step\": name}) "
                         "with its timing, for a harness that alternates its calls with these")
    ap.add_argument("--check", action="store_true",
                    help="verify greedy ids against expected.json and exit")
    args = ap.parse_args()

    t_load = time.perf_counter()
    policy = Policy(args.model, args.threads)
    load_s = time.perf_counter() - t_load
    if args.check:
        return check(policy, args.model)
    if args.steps and not args.serve:
        print(json.dumps(run_steps(policy, args.steps, args.iterations, args.warmup,
                                   args.max_new_tokens)))
        return 0

    prompts = load_prompts(policy, args.prompts, args.model)
    if args.serve:
        return serve(policy, prompts, args.steps, args.max_new_tokens)
    b = max(1, args.batch)
    calls = [[prompts[(i + j) % len(prompts)] for j in range(b)]
             for i in range(0, len(prompts), b)]

    def one_call(group, record):
        timing = {}
        t = time.perf_counter()
        res = policy.complete([p for _, p in group], args.max_new_tokens, not args.no_stop,
                              timing)
        dt = time.perf_counter() - t
        if record is not None:
            record.append({"names": [n for n, _ in group], "s": dt,
                           "prefill_s": timing.get("prefill_s", 0.0),
                           "prompt_tokens": timing["prompt_tokens"],
                           "new_tokens": sum(len(ids) for _, ids in res)})

    for _ in range(args.warmup):
        for g in calls:
            one_call(g, None)

    records: list[dict] = []
    lock = threading.Lock()
    work = [g for _ in range(args.iterations) for g in calls]

    def worker(items):
        local = []
        for g in items:
            one_call(g, local)
        with lock:
            records.extend(local)

    t_all = time.perf_counter()
    if args.concurrency <= 1:
        worker(work)
    else:
        threads = [threading.Thread(target=worker, args=(work[k::args.concurrency],))
                   for k in range(args.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    wall = time.perf_counter() - t_all

    new_tokens = sum(r["new_tokens"] for r in records)
    decode_s = [(r["s"] - r["prefill_s"]) / max(1, r["new_tokens"] / b - 1) for r in records
                if r["new_tokens"] > b]
    per_prompt = {}
    if b == 1:
        for r in records:
            per_prompt.setdefault(r["names"][0], []).append(r)
    result = {
        "runner": "python_baseline",
        "model": str(args.model),
        "onnxruntime": ort.__version__,
        "threads": args.threads,
        "batch": b,
        "concurrency": args.concurrency,
        "max_new_tokens": args.max_new_tokens,
        "stop_strings": not args.no_stop,
        "prompts": len(prompts),
        "calls": len(records),
        "load_ms": round(load_s * 1000, 3),
        # This process's peak resident memory (Linux reports KiB).
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "latency_ms": stats_ms([r["s"] for r in records]),
        "prefill_ms": stats_ms([r["prefill_s"] for r in records]),
        "per_token_ms": stats_ms(decode_s) if decode_s else None,
        "prompt_tokens_mean": round(statistics.mean(r["prompt_tokens"] for r in records), 2),
        "new_tokens_total": new_tokens,
        "wall_s": round(wall, 4),
        "tokens_per_s": round(new_tokens / wall, 2) if wall > 0 else None,
        "calls_per_s": round(len(records) / wall, 2) if wall > 0 else None,
        "per_prompt": {
            n: {"prompt_tokens": rs[0]["prompt_tokens"], "new_tokens": rs[0]["new_tokens"],
                "latency_ms": stats_ms([r["s"] for r in rs])}
            for n, rs in per_prompt.items()
        },
    }
    if args.json:
        print(json.dumps(result))
    else:
        lat = result["latency_ms"]
        print(f"{result['calls']} calls on {args.model} (batch {b}, concurrency "
              f"{args.concurrency}): median {lat['median']} ms, p90 {lat['p90']} ms, "
              f"{result['tokens_per_s']} new tokens/s")
        for n, pp in result["per_prompt"].items():
            print(f"  {n}: {pp['prompt_tokens']} prompt tokens, {pp['new_tokens']} new, "
                  f"median {pp['latency_ms']['median']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
