"""What the environment bridges' tests share: the interpreter and command of a bridge, a started
client for a module's fixture, and what a killed bridge left behind."""

from __future__ import annotations

import os
import signal
import sys

from replay_check import BridgeClient

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_VENV_PYTHON = os.path.join(REPO, ".venv", "bin", "python")
PYTHON = _VENV_PYTHON if os.path.exists(_VENV_PYTHON) else sys.executable


def bridge_command(name: str, *args: str) -> list[str]:
    """The command that runs `bridges/<name>/bridge.py` with the project's Python."""
    return [PYTHON, os.path.join(REPO, "bridges", name, "bridge.py"), *args]


def started(cmd: list[str]):
    """For a module-scoped fixture (`yield from started(CMD)`): an initialised client, which
    must shut down cleanly (exit code 0) when the module is done."""
    client = BridgeClient(cmd)
    client.initialize()
    yield client
    assert client.close() == 0


def survivors_of_a_killed_bridge(cmd: list[str], *reset_args) -> list[int]:
    """Starts the bridge as a session leader, resets an episode, SIGKILLs it and returns the
    processes of its session still alive (a planner, a game engine... should all be gone)."""
    client = BridgeClient(cmd, start_new_session=True)
    client.initialize()
    client.reset(*reset_args)
    pid = client.proc.pid
    os.kill(pid, signal.SIGKILL)
    client.proc.wait(10)
    return [int(d) for d in os.listdir("/proc") if d.isdigit() and _session_of(int(d)) == pid]


def _session_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[4])
    except (OSError, IndexError, ValueError):
        return None
