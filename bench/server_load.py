"""Drives `stepwire serve --listen` with N concurrent sessions over HTTP and reports step
throughput and the server's peak memory (VmHWM). Standard library only.

    python bench/server_load.py --stepwire target/release/stepwire --policy models/tiny-llama --sessions 1 4 8
"""
import argparse
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request

OBSERVATIONS = [
    "You are in the kitchen. You see a fridge 1, a countertop 1, a countertop 2 and a sinkbasin 1.",
    "You open the fridge 1. In it you see an apple 1 and a lettuce 2.",
    "You pick up the apple 1 from the fridge 1.",
    "You arrive at sinkbasin 1. On the sinkbasin 1 you see nothing.",
]
ACTIONS = ["go to fridge 1", "open fridge 1", "take apple 1 from fridge 1", "go to sinkbasin 1",
           "clean apple 1 with sinkbasin 1", "go to countertop 1", "look"]


def call(url, method, params, ident):
    body = json.dumps({"jsonrpc": "2.0", "id": ident, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, body, {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        reply = json.loads(r.read())
    if "error" in reply:
        raise RuntimeError(reply["error"])
    return reply["result"]


def session(url, steps, out, index):
    state = {"task": "put a clean apple in the fridge"}
    for i in range(steps):
        params = {"state": state, "observation": {"text": OBSERVATIONS[i % len(OBSERVATIONS)]},
                  "admissibleActions": ACTIONS}
        result = call(url, "agent/step", params, f"{index}-{i}")
        state = result["nextState"]
    out[index] = steps


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stepwire", default="target/release/stepwire")
    ap.add_argument("--policy", default="models/tiny-llama")
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--steps", type=int, default=20, help="agent/step calls per session")
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="extra argument for `stepwire serve`, e.g. --serve-arg=--one-session (repeatable)")
    args = ap.parse_args()
    server = subprocess.Popen([args.stepwire, "serve", "--listen", "127.0.0.1:0", "--policy", args.policy,
                               *args.serve_arg],
                              stderr=subprocess.PIPE, text=True)
    try:
        for line in server.stderr:
            m = re.search(r"listening on ws://(\S+)", line)
            if m:
                url = f"http://{m.group(1)}"
                break
        threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
        base_mb = peak_rss_mb(server.pid)
        rows = []
        for n in args.sessions:
            done = [0] * n
            threads = [threading.Thread(target=session, args=(url, args.steps, done, i)) for i in range(n)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - t0
            rows.append({"sessions": n, "steps": sum(done), "seconds": round(elapsed, 3),
                         "steps_per_s": round(sum(done) / elapsed, 2), "peak_rss_mb": round(peak_rss_mb(server.pid), 1)})
        base = rows[0]["steps_per_s"]
        print(f"server peak memory after load: {rows[-1]['peak_rss_mb']} MB (after start: {base_mb:.1f} MB)")
        print("| sessions | agent/step calls | s | steps/s | vs 1 session | peak RSS MB |")
        print("| --- | --- | --- | --- | --- | --- |")
        for r in rows:
            print(f"| {r['sessions']} | {r['steps']} | {r['seconds']} | {r['steps_per_s']} | {r['steps_per_s'] / base:.2f}x | {r['peak_rss_mb']} |")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
