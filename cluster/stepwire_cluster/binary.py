"""Finding the stepwire binary and asking it for the plan."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def resolve(given: str | None) -> str:
    for candidate in (given, os.environ.get("STEPWIRE_BIN")):
        if candidate:
            path = shutil.which(candidate) or candidate
            if not os.access(path, os.X_OK):
                raise SystemExit(f"error: the stepwire binary {candidate!r} is not an executable file")
            return os.path.abspath(path)
    for profile in ("release", "debug"):
        path = ROOT / "target" / profile / "stepwire"
        if os.access(path, os.X_OK):
            return str(path)
    found = shutil.which("stepwire")
    if found:
        return found
    raise SystemExit("error: no stepwire binary: build it (cargo build -p stepwire-runtime), or pass --stepwire / set STEPWIRE_BIN")


def print_plan(stepwire: str, run_args: list[str]) -> dict:
    """`stepwire run <run_args> --print-plan`: the plan, with what the recording already holds.
    Its errors (bad arguments, a recording it refuses) go to stderr as they are."""
    proc = subprocess.run(
        [stepwire, "run", *run_args, "--print-plan"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
    )
    if proc.returncode != 0:
        raise PlanError(proc.returncode)
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        print(f"error: `stepwire run --print-plan` printed no plan ({e}); is {stepwire} older than the driver?", file=sys.stderr)
        raise PlanError(1) from e


class PlanError(Exception):
    def __init__(self, code: int):
        super().__init__(code)
        self.code = code
