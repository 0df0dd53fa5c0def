"""Splits a cluster command line into the driver's own options and the `stepwire run` arguments.

Everything the driver does not own passes through to every `stepwire run` it starts, unchanged,
so the plan is the one `stepwire run` makes for the same arguments.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

# `stepwire run` flags the driver sets itself on the processes it starts.
RESERVED = ("--print-plan", "--only-episodes", "--report-from")


@dataclass
class ClusterArgs:
    ray: str
    stepwire: str | None
    batch: int | None
    max_retries: int
    jobs: int
    record: str | None
    resume: bool
    overwrite: bool
    json: bool
    quiet: bool
    # Checks of the final report only (a worker's share would fail them on its own).
    report_only: list[str] = field(default_factory=list)
    # Everything else: environment, selection, policy, limits.
    run_args: list[str] = field(default_factory=list)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m stepwire_cluster run",
        allow_abbrev=False,
        description=(
            "Play the episodes `stepwire run` would plan for the same arguments on the nodes of a "
            "Ray cluster, into ONE recording on this machine, with the same resume and report. "
            "Any argument not listed here is a `stepwire run` argument (see `stepwire run --help`)."
        ),
        epilog=(
            "Example: python -m stepwire_cluster run --ray 127.0.0.1:6379 --env textworld --policy "
            "expert --record runs/tw.jsonl --resume --json. Every node needs the stepwire binary and "
            "the checkout (bridges, policies) at the same paths as the driver."
        ),
    )
    p.add_argument("--ray", required=True, metavar="ADDRESS", help="Ray cluster address (host:port of the head's GCS), or 'auto'.")
    p.add_argument("--stepwire", metavar="PATH", help="stepwire binary on the nodes (default: $STEPWIRE_BIN, else the checkout's target/{release,debug}/stepwire, else stepwire on PATH).")
    p.add_argument("--batch", type=int, metavar="K", help="Episodes per Ray task (default: the episodes to run over 4 tasks per cluster CPU, 1 to 16): smaller re-plays less when a node is lost and streams results sooner, larger starts fewer bridges.")
    p.add_argument("--max-retries", type=int, default=3, metavar="N", help="Ray retries of a task whose node or worker process died (default 3).")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="K", help="Bridges per Ray task (its --jobs; the task asks Ray for K CPUs).")
    p.add_argument("--record", metavar="FILE", help="The recording (default runs/<env>-<timestamp>.jsonl, as stepwire run).")
    p.add_argument("--resume", action="store_true", help="Continue the recording: episodes it holds are skipped.")
    p.add_argument("--overwrite", action="store_true", help="Replace an existing recording.")
    p.add_argument("--json", action="store_true", help="Print the report as JSON (as stepwire run --json).")
    p.add_argument("--quiet", "-q", action="store_true", help="Log only a line per finished batch.")
    p.add_argument("--min-success", metavar="FRACTION", help="As stepwire run: exit 2 below this success rate.")
    p.add_argument("--max-failed", metavar="N", help="As stepwire run: exit 2 when more episodes failed.")
    return p


def split(argv: list[str]) -> ClusterArgs:
    p = parser()
    ns, rest = p.parse_known_args(argv)
    for flag in (*RESERVED, "--no-record"):
        if any(a == flag or a.startswith(flag + "=") for a in rest):
            why = "a cluster run always records (the recording carries the results)" if flag == "--no-record" else "the driver sets it"
            p.error(f"{flag} cannot be given to a cluster run: {why}")
    if (ns.batch is not None and ns.batch < 1) or ns.jobs < 1 or ns.max_retries < 0:
        p.error("--batch and --jobs must be at least 1, --max-retries at least 0")
    if ns.resume and ns.overwrite:
        p.error("--resume and --overwrite exclude each other")
    report_only = []
    if ns.min_success is not None:
        report_only += ["--min-success", ns.min_success]
    if ns.max_failed is not None:
        report_only += ["--max-failed", ns.max_failed]
    return ClusterArgs(
        ray=ns.ray,
        stepwire=ns.stepwire,
        batch=ns.batch,
        max_retries=ns.max_retries,
        jobs=ns.jobs,
        record=ns.record,
        resume=ns.resume,
        overwrite=ns.overwrite,
        json=ns.json,
        quiet=ns.quiet,
        report_only=report_only,
        run_args=rest,
    )
