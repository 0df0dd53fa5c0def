"""What a Ray task runs on a node: `stepwire run --only-episodes` for its batch, into a private
recording, whose whole episodes it returns to the driver."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import tempfile

# Env vars a task takes from the driver (the checkout, the Python of the bridges, ONNX Runtime, logs).
FORWARDED_PREFIXES = ("STEPWIRE_", "ORT_", "ALFWORLD_", "SCIENCEWORLD_", "TEXTWORLD_")

PR_SET_PDEATHSIG = 1


def forwarded_env(environ: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k.startswith(FORWARDED_PREFIXES)}


def _die_with_parent() -> None:
    # When Ray kills the task's worker process (node lost, task cancelled), stepwire gets SIGTERM
    # and shuts its bridges down instead of playing on as an orphan.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def episodes_of(text: str) -> list[tuple[str, str]]:
    """Splits a recording into whole episodes: (episode id, its lines ending with its summary).
    Lines after the last summary (an episode cut short) are left out."""
    out: list[tuple[str, str]] = []
    block: list[str] = []
    for line in text.splitlines(keepends=True):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            break  # a line cut short: stepwire was killed mid-write
        block.append(line if line.endswith("\n") else line + "\n")
        if record.get("kind") == "episode":
            key = record["episode"]
            out.append((episode_id(key), "".join(block)))
            block = []
    return out


def episode_id(key: dict) -> str:
    """`EpisodeKey::id()` of the Rust side: env/task/split/variation#repeat."""
    return f"{key['env']}/{key['task']}/{key['split']}/{key['variation']}#{key.get('repeat', 0)}"


def play_batch(stepwire: str, run_args: list[str], ids: list[str], jobs: int, env: dict[str, str], cwd: str) -> dict:
    """Plays `ids` (planned episode ids) with `stepwire run <run_args>` in `cwd` (the driver's
    directory: relative paths in the arguments mean the same on every node); returns
    {"episodes": [(id, lines)], "exit": code, "stderr": tail, "node": hostname:pid}."""
    with tempfile.TemporaryDirectory(prefix="stepwire-ray-") as tmp:
        ids_file = os.path.join(tmp, "episodes.txt")
        record = os.path.join(tmp, "record.jsonl")
        with open(ids_file, "w") as f:
            f.write("\n".join(ids) + "\n")
        cmd = [
            stepwire, "run", *run_args,
            "--only-episodes", ids_file, "--record", record, "--overwrite",
            "--jobs", str(jobs), "--json", "--quiet",
        ]
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **env},
            cwd=cwd if os.path.isdir(cwd) else None,
            preexec_fn=_die_with_parent,
            text=True,
        )
        text = open(record, encoding="utf-8").read() if os.path.exists(record) else ""
    return {
        "episodes": episodes_of(text),
        "exit": proc.returncode,
        "stderr": proc.stderr[-2000:],
        "node": f"{os.uname().nodename}:{os.getpid()}",
    }
