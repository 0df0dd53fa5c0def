"""The cluster run: plan (Rust), batches as Ray tasks, one recording here, report (Rust).

Ray does the distribution: each batch is a task asking for `--jobs` CPUs; a task whose worker
process or node dies is retried by Ray (`max_retries`) on a node that is alive. The driver only
appends the episodes tasks return, each once, and finally has `stepwire run --report-from` report
the recording, so the report and its exit status are `stepwire run`'s own.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from . import binary, worker
from .args import ClusterArgs
from .recording import Appender

log = logging.getLogger("stepwire_cluster")


class StopFlag:
    """SIGINT/SIGTERM only set a flag that the wait loop checks: raising inside Ray's calls
    would tear its client down mid-call."""

    def __init__(self):
        self.signum: int | None = None

    def __call__(self, signum, _frame):
        self.signum = self.signum or signum


def record_flags(args: ClusterArgs) -> list[str]:
    flags = ["--record", args.record] if args.record else []
    if args.resume:
        flags.append("--resume")
    if args.overwrite:
        flags.append("--overwrite")
    return flags


def reachable(address: str, timeout: float = 10.0) -> None:
    """A host:port that does not answer is refused at once: ray.init would wait on it forever."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return  # 'auto', 'ray://...' and the like: Ray resolves them
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as e:
        raise SystemExit(f"error: cannot connect to the Ray cluster at {address}: {e} (is `ray start --head` running there?)") from None


def batch_size(to_run: int, cpus: float) -> int:
    """About 4 tasks per CPU: enough to balance the nodes and re-play little when one is lost,
    few enough that bridge start-ups do not dominate."""
    return max(1, min(16, -(-to_run // max(1, int(cpus) * 4))))


def batches(ids: list[str], size: int) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def run(args: ClusterArgs) -> int:
    """Stdout carries only the report (Ray prints some of its own notices there): everything
    else in this process goes to stderr."""
    report_out = os.dup(1)
    sys.stdout.flush()
    os.dup2(2, 1)
    try:
        return _run(args, report_out)
    finally:
        sys.stdout.flush()
        os.dup2(report_out, 1)
        os.close(report_out)


def _run(args: ClusterArgs, report_out: int) -> int:
    started = time.monotonic()
    stepwire = binary.resolve(args.stepwire)
    try:
        listing = binary.print_plan(stepwire, args.run_args + record_flags(args))
    except binary.PlanError as e:
        return e.code
    record = listing["record"]
    recorded = {e["id"] for e in listing["episodes"] if e["recorded"]}
    todo = [e["id"] for e in listing["episodes"] if not e["recorded"]]
    log.info(
        "plan: %d episodes of %s (%s split): %d already recorded, %d to run on Ray at %s; recording: %s",
        listing["planned"], listing["env"], listing["split"], len(recorded), len(todo), args.ray, record,
    )

    appender = Appender(record, recorded)
    stop = StopFlag()
    old_term = signal.signal(signal.SIGTERM, stop)
    old_int = signal.signal(signal.SIGINT, stop)
    try:
        if todo and stop.signum is None:
            _spread(args, stepwire, todo, appender, stop)
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)
        appender.close()
    return _report(args, stepwire, record, appender.played, time.monotonic() - started, stop.signum, report_out)


def _spread(args: ClusterArgs, stepwire: str, todo: list[str], appender: Appender, stop: StopFlag) -> None:
    import ray  # only a cluster run needs it

    reachable(args.ray)
    try:
        ray.init(address=args.ray, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise SystemExit(f"error: cannot connect to the Ray cluster at {args.ray}: {e}") from None
    # ray.init installs its own SIGTERM handler (a crash report, then exit): ours comes back.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # Workers get the task function by value: the nodes need Ray and stepwire, not this package.
    ray.cloudpickle.register_pickle_by_value(worker)
    task = ray.remote(worker.play_batch).options(
        num_cpus=args.jobs, max_retries=args.max_retries, retry_exceptions=False
    )
    env = worker.forwarded_env(dict(os.environ))
    largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=0)
    if largest < args.jobs:
        ray.shutdown()
        raise SystemExit(
            f"error: --jobs {args.jobs} asks each task for {args.jobs} CPUs, but the largest node of the cluster "
            f"has {largest:g}: its tasks could never be scheduled"
        )
    size = args.batch or batch_size(len(todo), ray.cluster_resources().get("CPU", 1.0))
    log.info("%d episodes in batches of %d over %g cluster CPUs", len(todo), size, ray.cluster_resources().get("CPU", 0))
    pending = {task.remote(stepwire, args.run_args, b, min(args.jobs, len(b)), env, os.getcwd()): b for b in batches(todo, size)}
    done_count = 0
    try:
        while pending and stop.signum is None:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                batch = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as e:
                    # Retries spent (or the task could not run): its episodes stay unplayed and
                    # the report counts them as not run, as a local run whose bridges would not start.
                    log.error("a batch of %d episodes was lost after Ray's retries: %s", len(batch), str(e).splitlines()[0])
                    continue
                wanted = set(batch)
                for episode_id, lines in result["episodes"]:
                    if episode_id in wanted and appender.append(episode_id, lines):
                        done_count += 1
                missing = wanted - {i for i, _ in result["episodes"]}
                if missing or result["exit"] != 0:
                    log.warning(
                        "batch on %s: stepwire exited %s, %d episode(s) not played: %s",
                        result["node"], result["exit"], len(missing), result["stderr"].strip()[-500:],
                    )
                if not args.quiet or not pending:
                    log.info("[%d/%d] episodes recorded (batch on %s)", done_count, len(todo), result["node"])
        if stop.signum is not None:
            log.warning("stopping (signal %d): cancelling the pending batches; finished episodes are recorded", stop.signum)
            for ref in pending:
                ray.cancel(ref, force=True)
    finally:
        ray.shutdown()


def _report(
    args: ClusterArgs, stepwire: str, record: str, played: list[str], wall: float, interrupted: int | None, out: int
) -> int:
    """`stepwire run --report-from`: the same report (and exit status) a local run gives."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="stepwire-report-", delete=False) as f:
        json.dump({"played": played, "wallSeconds": wall, "interrupted": interrupted is not None}, f)
        report = f.name
    try:
        cmd = [stepwire, "run", *args.run_args, "--record", record, "--resume", "--report-from", report, "--quiet"]
        cmd += args.report_only + (["--json"] if args.json else [])
        code = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out).returncode
    finally:
        os.unlink(report)
    if interrupted is not None:
        print(f"interrupted: continue with the same command and --resume ({record})", file=sys.stderr)
        return 128 + interrupted
    return code
