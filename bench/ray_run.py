"""Episodes per minute: `stepwire run --jobs N` on this machine against the same run spread over
a local Ray cluster with 1 and N worker nodes (`python -m stepwire_cluster run`), in one process.

Each configuration plays the same plan (real environment, expert policy) into a fresh recording;
the wall clock is the whole command (plan, Ray connection, report included; starting the Ray
cluster is measured apart, as a cluster is started once for many runs). Prints a Markdown table
and, with --json, the raw figures.

    .venv/bin/python bench/ray_run.py [--env textworld] [--run-args "..."] [--ray-args "--batch 4"]
        [--workers 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "cluster"))

from stepwire_cluster.local import LocalCluster  # noqa: E402


def stepwire_bin() -> str:
    for c in (os.environ.get("STEPWIRE_BIN"), ROOT / "target/release/stepwire", ROOT / "target/debug/stepwire"):
        if c and os.access(c, os.X_OK):
            return str(c)
    raise SystemExit("no stepwire binary: cargo build -p stepwire-runtime, or set STEPWIRE_BIN")


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, dict]:
    t0 = time.monotonic()
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    if out.returncode != 0:
        raise SystemExit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stderr[-3000:]}")
    return wall, json.loads(out.stdout)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="textworld")
    p.add_argument("--run-args", default="--policy expert --max-steps 60 --repeat 2",
                   help="the stepwire run arguments of every configuration (besides --env)")
    p.add_argument("--ray-args", default="", help="driver options of the Ray rows, e.g. '--batch 4'")
    p.add_argument("--workers", type=int, default=2, help="N: local --jobs N and N Ray worker nodes")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()

    stepwire = stepwire_bin()
    env = {**os.environ, "STEPWIRE_BIN": stepwire, "STEPWIRE_ROOT": str(ROOT), "STEPWIRE_LOG": "warn",
           "STEPWIRE_PYTHON": os.environ.get("STEPWIRE_PYTHON", sys.executable),
           "PYTHONPATH": str(ROOT / "cluster")}
    run_args = ["--env", a.env, *a.run_args.split()]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        def local(jobs: int) -> None:
            wall, s = timed([stepwire, "run", *run_args, "--jobs", str(jobs), "--json", "-q",
                             "--record", f"{tmp}/local{jobs}.jsonl"], env)
            rows.append({"config": f"stepwire run --jobs {jobs}", "wall_s": wall, "episodes": s["episodes"],
                         "won": s["won"]})

        def on_ray(cluster: LocalCluster, nodes: int) -> None:
            wall, s = timed([sys.executable, "-m", "stepwire_cluster", "run", "--ray", cluster.address, *a.ray_args.split(), *run_args,
                             "--json", "--record", f"{tmp}/ray{nodes}.jsonl"], env)
            rows.append({"config": f"Ray, {nodes} worker node(s) x 1 CPU", "wall_s": wall, "episodes": s["episodes"],
                         "won": s["won"]})

        local(1)
        local(a.workers)
        cluster = LocalCluster(workdir=tmp)
        try:
            t0 = time.monotonic()
            cluster.start_head(num_cpus=0)
            cluster.add_worker(num_cpus=1)
            start_s = time.monotonic() - t0
            on_ray(cluster, 1)
            for _ in range(a.workers - 1):
                cluster.add_worker(num_cpus=1)
            on_ray(cluster, a.workers)
        finally:
            cluster.stop()
    for r in rows:
        r["episodes_per_min"] = r["episodes"] * 60.0 / r["wall_s"]
    base = {1: rows[0]["episodes_per_min"], a.workers: rows[1]["episodes_per_min"]}
    print(f"| configuration ({a.env}: {' '.join(run_args[2:])}) | episodes | won | wall s | episodes/min | vs local same parallelism |")
    print("|---|---:|---:|---:|---:|---:|")
    for i, r in enumerate(rows):
        par = 1 if i in (0, 2) else a.workers
        print(f"| {r['config']} | {r['episodes']} | {r['won']} | {r['wall_s']:.1f} | {r['episodes_per_min']:.1f} | "
              f"{r['episodes_per_min'] / base[par]:.2f} |")
    print(f"\nRay cluster start (head + 1 worker node): {start_s:.1f} s, not in the rows above.")
    if a.json:
        print(json.dumps({"rows": rows, "ray_start_s": start_s}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
