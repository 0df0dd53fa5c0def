#!/usr/bin/env python3
"""Replay a bridge's expert over real pipes and report how often it wins.

    .venv/bin/python bridges/replay_check.py [options] -- BRIDGE-COMMAND...

Examples (from the repo root):

    # ScienceWorld: variation 0 of the train split of every task, then 30 random train variations
    .venv/bin/python bridges/replay_check.py --tasks all --split train --variations first \\
        --max-steps 1000 --jobs 2 -- .venv/bin/python bridges/scienceworld/bridge.py
    .venv/bin/python bridges/replay_check.py --tasks all --split train --variations random:30 \\
        --seed 0 --max-steps 1000 --jobs 2 -- .venv/bin/python bridges/scienceworld/bridge.py
    # ALFWorld: the hand-coded expert on all 134 valid_unseen games
    .venv/bin/python bridges/replay_check.py --tasks all --split valid_unseen --variations all \\
        --max-steps 200 --jobs 2 -- .venv/bin/python bridges/alfworld/bridge.py
    # TextWorld: every generated game's walkthrough
    .venv/bin/python bridges/replay_check.py --tasks all --split train --variations all \\
        -- .venv/bin/python bridges/textworld/bridge.py

`--variations`: `all`, `first` (0), `N`, `N-M` (inclusive), or `random:K` (K (task, variation)
pairs drawn with `--seed` over the chosen tasks). `--jobs J` runs J bridge processes side by side.
Each episode: `env/reset`, then `env/expertAction` + `env/step` until `done` or `--max-steps`.
One line per episode on stderr (and `--jsonl FILE`); the summary on stdout (`--json` for JSON).
Exit code 0 when the win rate reaches `--min-win-rate` (default 0).

This file is also the small protocol client the bridges' tests and `bench/` use
(`BridgeClient`): standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message
        self.data = data


class BridgeClient:
    """A stepwire environment-plane client over a bridge subprocess's stdin/stdout."""

    def __init__(self, cmd: Sequence[str], stderr: Any = None, env: Optional[Dict[str, str]] = None,
                 cwd: Optional[str] = None, start_new_session: bool = False) -> None:
        self.cmd = list(cmd)
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                     env=env, cwd=cwd, start_new_session=start_new_session)
        self._next_id = 0
        self._responses: "queue.Queue[Optional[dict]]" = queue.Queue()
        self.notifications: List[dict] = []
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self.init_result: Optional[dict] = None

    # -- framing ---------------------------------------------------------------------------
    def _read_loop(self) -> None:
        out = self.proc.stdout
        assert out is not None
        try:
            while True:
                length = None
                while True:
                    line = out.readline()
                    if not line:
                        self._responses.put(None)
                        return
                    line = line.strip()
                    if not line:
                        break
                    k, _, v = line.decode("ascii").partition(":")
                    if k.strip().lower() == "content-length":
                        length = int(v.strip())
                if length is None:
                    raise RuntimeError("frame without Content-Length")
                body = out.read(length)
                msg = json.loads(body.decode("utf-8"))
                if "method" in msg and "id" not in msg:
                    self.notifications.append(msg)
                else:
                    self._responses.put(msg)
        except Exception as e:  # pragma: no cover - reported to the waiting caller
            self._responses.put({"_reader_error": repr(e)})

    def send(self, msg: dict) -> None:
        body = json.dumps(msg).encode("utf-8")
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def send_request(self, method: str, params: Any = None) -> int:
        self._next_id += 1
        msg: dict = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return self._next_id

    def notify(self, method: str, params: Any = None) -> None:
        msg: dict = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)

    def wait_response(self, rid: int, timeout: float = 300.0) -> dict:
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError(f"no answer to request {rid} within {timeout} s")
            try:
                msg = self._responses.get(timeout=left)
            except queue.Empty:
                continue
            if msg is None:
                raise EOFError(f"the bridge closed its stdout (exit code {self.proc.poll()})")
            if "_reader_error" in msg:
                raise RuntimeError(msg["_reader_error"])
            if msg.get("id") == rid:
                return msg

    def request(self, method: str, params: Any = None, timeout: float = 300.0) -> Any:
        msg = self.wait_response(self.send_request(method, params), timeout)
        if "error" in msg:
            e = msg["error"]
            raise RpcError(e.get("code"), e.get("message", ""), e.get("data"))
        return msg.get("result")

    # -- the environment plane ---------------------------------------------------------------
    def initialize(self, timeout: float = 300.0) -> dict:
        self.init_result = self.request("initialize", {"protocolVersion": 1, "clientInfo": {"name": "replay_check"},
                                                       "capabilities": {}}, timeout)
        self.notify("initialized", {})
        return self.init_result

    def tasks(self) -> List[dict]:
        return self.request("env/tasks", {})["tasks"]

    def reset(self, task: str, split: Optional[str] = None, variation: Optional[int] = None,
              seed: Optional[int] = None, options: Optional[dict] = None) -> dict:
        p: dict = {"task": task}
        if split is not None:
            p["split"] = split
        if variation is not None:
            p["variation"] = variation
        if seed is not None:
            p["seed"] = seed
        if options:
            p["options"] = options
        return self.request("env/reset", p)

    def step(self, action: str) -> dict:
        return self.request("env/step", {"action": action})

    def admissible(self) -> List[str]:
        return self.request("env/admissibleActions", {})["actions"]

    def expert(self) -> Optional[str]:
        return self.request("env/expertAction", {})["action"]

    def expert_advice(self) -> dict:
        """The whole `env/expertAction` result: `action`, and `subtask` when the expert names one."""
        return self.request("env/expertAction", {})

    def close(self, timeout: float = 60.0) -> Optional[int]:
        """shutdown + exit; returns the exit code (kills the bridge when it does not go)."""
        try:
            if self.proc.poll() is None:
                self.request("shutdown", None, timeout)
                self.notify("exit")
                self.proc.stdin.close()  # type: ignore[union-attr]
            return self.proc.wait(timeout)
        except Exception:
            self.kill()
            return self.proc.poll()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> "BridgeClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# -- replay -----------------------------------------------------------------------------------


def play_expert(client: BridgeClient, task: str, split: str, variation: int, max_steps: int,
                seed: Optional[int] = None, options: Optional[dict] = None) -> Dict[str, Any]:
    t0 = time.time()
    r = client.reset(task, split, variation, seed=seed, options=options)
    t_reset = time.time() - t0
    steps, score, won, done, note = 0, 0.0, False, False, ""
    step_time = 0.0
    while steps < max_steps:
        try:
            action = client.expert()
        except RpcError as e:
            note = f"no expert: {e.message}"
            break
        if action is None:
            note = "expert has no action"
            break
        try:
            t1 = time.time()
            s = client.step(action)
            step_time += time.time() - t1
        except RpcError as e:
            note = f"step {action!r}: {e.message} ({e.code})"
            break
        steps += 1
        score, won, done = s["score"], s["won"], s["done"]
        if done:
            break
    if not done and not note:
        note = "step limit"
    return {"task": task, "split": split, "variation": variation, "won": won, "done": done, "score": score,
            "maxScore": r.get("maxScore"), "steps": steps, "resetSeconds": round(t_reset, 3),
            "stepMs": round(1000 * step_time / steps, 2) if steps else None,
            "seconds": round(time.time() - t0, 2), "note": note}


def parse_variations(spec: str, tasks: List[dict], split: str, seed: int) -> List[Tuple[str, int]]:
    def count(t: dict) -> int:
        return next((s["count"] for s in t["splits"] if s["name"] == split), 0)

    eps: List[Tuple[str, int]] = []
    if spec.startswith("random:"):
        k = int(spec.split(":", 1)[1])
        rng = random.Random(seed)
        pool = [t for t in tasks if count(t) > 0]
        for _ in range(k):
            t = rng.choice(pool)
            eps.append((t["id"], rng.randrange(count(t))))
        return eps
    for t in tasks:
        n = count(t)
        if spec == "all":
            vs = range(n)
        elif spec == "first":
            vs = range(min(1, n))
        elif "-" in spec:
            a, b = spec.split("-", 1)
            vs = range(int(a), min(int(b) + 1, n))
        else:
            vs = [int(spec)] if int(spec) < n else []
        eps.extend((t["id"], v) for v in vs)
    return eps


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("usage: replay_check.py [options] -- BRIDGE-COMMAND...", file=sys.stderr)
        return 2
    cut = argv.index("--")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="all", help="comma-separated task ids, or `all`")
    ap.add_argument("--split", default="train")
    ap.add_argument("--variations", default="all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--options", default=None, help="reset options as JSON")
    ap.add_argument("--jsonl", default=None, help="write one JSON line per episode here")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    ap.add_argument("--min-win-rate", type=float, default=0.0)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv[:cut])
    cmd = argv[cut + 1:]
    options = json.loads(args.options) if args.options else None

    t0 = time.time()
    first = BridgeClient(cmd)
    first.initialize()
    tasks = first.tasks()
    if args.tasks != "all":
        want = args.tasks.split(",")
        tasks = [t for t in tasks if t["id"] in want]
    episodes = parse_variations(args.variations, tasks, args.split, args.seed)
    if not episodes:
        print("no episodes selected", file=sys.stderr)
        first.close()
        return 2
    work: "queue.Queue[Tuple[int, str, int]]" = queue.Queue()
    for i, (t, v) in enumerate(episodes):
        work.put((i, t, v))
    results: List[Optional[Dict[str, Any]]] = [None] * len(episodes)
    lock = threading.Lock()
    out = open(args.jsonl, "w") if args.jsonl else None

    def worker(client: Optional[BridgeClient]) -> None:
        try:
            if client is None:
                client = BridgeClient(cmd)
                client.initialize()
            while True:
                try:
                    i, t, v = work.get_nowait()
                except queue.Empty:
                    break
                try:
                    res = play_expert(client, t, args.split, v, args.max_steps, seed=args.seed, options=options)
                except (RpcError, EOFError, TimeoutError) as e:
                    res = {"task": t, "split": args.split, "variation": v, "won": False, "done": False,
                           "score": 0, "steps": 0, "note": f"error: {e}"}
                    if client.proc.poll() is not None:  # the bridge died: start another
                        client = BridgeClient(cmd)
                        client.initialize()
                results[i] = res
                with lock:
                    if not args.quiet:
                        print(("WON " if res["won"] else "LOST") + f" {t} {args.split}#{v} score={res['score']} "
                              f"steps={res['steps']} reset={res.get('resetSeconds')}s step={res.get('stepMs')}ms "
                              f"{res['note']}", file=sys.stderr, flush=True)
                    if out:
                        out.write(json.dumps(res) + "\n")
                        out.flush()
        finally:
            if client is not None:
                client.close()

    threads = [threading.Thread(target=worker, args=(first if j == 0 else None,)) for j in range(max(1, args.jobs))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    done = [r for r in results if r is not None]
    won = sum(1 for r in done if r["won"])
    step_ms = sorted(r["stepMs"] for r in done if r.get("stepMs"))
    resets = sorted(r["resetSeconds"] for r in done if r.get("resetSeconds") is not None)
    summary = {
        "episodes": len(done), "won": won, "winRate": round(won / len(done), 4) if done else 0.0,
        "meanSteps": round(sum(r["steps"] for r in done) / len(done), 1) if done else 0,
        "medianStepMs": step_ms[len(step_ms) // 2] if step_ms else None,
        "medianResetSeconds": resets[len(resets) // 2] if resets else None,
        "seconds": round(time.time() - t0, 1),
        "lost": [f"{r['task']}#{r['variation']}: {r['note'] or 'score ' + str(r['score'])}" for r in done if not r["won"]],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{won}/{len(done)} won ({100 * summary['winRate']:.1f} %), mean {summary['meanSteps']} steps, "
              f"median step {summary['medianStepMs']} ms, median reset {summary['medianResetSeconds']} s, "
              f"{summary['seconds']} s in all")
        for line in summary["lost"]:
            print("  lost: " + line)
    return 0 if summary["winRate"] >= args.min_win_rate else 1


if __name__ == "__main__":
    sys.exit(main())
