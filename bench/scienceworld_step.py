#!/usr/bin/env python3
"""ScienceWorld step time: the stepwire bridge (over real pipes) vs the package's own `env.step()`.

    .venv/bin/python bench/scienceworld_step.py [--tasks boil,chemistry-mix,find-living-thing]
        [--split train] [--variation 0] [--max-steps 40] [--repeats 2] [--json]

For each task the same gold actions are played twice per repeat, alternating so that machine
load hits both sides alike:

* **bridge**: `env/step` round trips to `bridges/scienceworld/bridge.py` (framing, JSON, the
  bridge's bare Java step + score + `look`/`inventory` parts; no valid-action list);
* **package**: `ScienceWorldEnv.step()` in this process (builds `look`, `inventory`, the task
  description and the valid-action list on every step, as the package does).

Also shown: the bare Java call alone (`env.server.step`, in the package's JVM), for reference. Prints per-side mean
and median milliseconds and `ratio = bridge mean / package mean` (below 1: the bridge is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bridges"))
from bridge_client import BridgeClient  # noqa: E402


def stats(xs):
    return {"n": len(xs), "mean_ms": round(1000 * statistics.fmean(xs), 2),
            "median_ms": round(1000 * statistics.median(xs), 2)} if xs else {"n": 0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="boil,chemistry-mix,find-living-thing")
    ap.add_argument("--split", default="train")
    ap.add_argument("--variation", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from scienceworld import ScienceWorldEnv

    bridge = BridgeClient([sys.executable, os.path.join(ROOT, "bridges", "scienceworld", "bridge.py")])
    bridge.initialize()
    tasks = {t["id"]: t for t in bridge.tasks()}
    pkg = ScienceWorldEnv("", envStepLimit=10**9)
    side = {"bridge": [], "package": [], "java_step": []}
    try:
        for task in args.tasks.split(","):
            split_vars = None
            for _ in range(args.repeats):
                # bridge side
                r = bridge.reset(task, args.split, args.variation)
                real = r["_meta"]["variationIdx"]
                gold = []
                for _ in range(args.max_steps):
                    a = bridge.expert()
                    if a is None:
                        break
                    gold.append(a)
                    t = time.perf_counter()
                    s = bridge.step(a)
                    side["bridge"].append(time.perf_counter() - t)
                    if s["done"]:
                        break
                # package side, same variation, same actions
                pkg.load(task, real, "", generateGoldPath=False)
                pkg.reset()
                for a in gold:
                    t = time.perf_counter()
                    _obs, _rew, done, _info = pkg.step(a)
                    side["package"].append(time.perf_counter() - t)
                    if done:
                        break
                # the floor: the bare Java step alone
                pkg.load(task, real, "", generateGoldPath=False)
                pkg.server.reset()
                pkg.server.step("look around")
                for a in gold:
                    t = time.perf_counter()
                    pkg.server.step(a)
                    side["java_step"].append(time.perf_counter() - t)
                split_vars = real
            print(f"[bench] {task} variation {split_vars}: {len(gold)} gold steps", file=sys.stderr)
    finally:
        bridge.close()
        pkg.close()
    out = {k: stats(v) for k, v in side.items()}
    out["ratio_bridge_over_package"] = round(out["bridge"]["mean_ms"] / out["package"]["mean_ms"], 4)
    out["speedup_package_over_bridge"] = round(out["package"]["mean_ms"] / out["bridge"]["mean_ms"], 1)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k in ("bridge", "package", "java_step"):
            print(f"{k:10s} n={out[k]['n']:4d} mean {out[k]['mean_ms']:8.2f} ms  median {out[k]['median_ms']:8.2f} ms")
        print(f"ratio bridge/package = {out['ratio_bridge_over_package']} "
              f"(the package's step takes {out['speedup_package_over_bridge']}x the bridge's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
