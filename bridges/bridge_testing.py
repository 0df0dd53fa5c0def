"""What the environment bridges' tests share: the interpreter and command of a bridge, a started
client for a module's fixture, what a killed bridge left behind, a bridge's module, and the
expert's subtasks as played."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys

from bridge_client import BridgeClient

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_VENV_PYTHON = os.path.join(REPO, ".venv", "bin", "python")
PYTHON = _VENV_PYTHON if os.path.exists(_VENV_PYTHON) else sys.executable


def bridge_command(name: str, *args: str) -> list[str]:
    """The command that runs `bridges/<name>/bridge.py` with the project's Python."""
    return [PYTHON, os.path.join(REPO, "bridges", name, "bridge.py"), *args]


def bridge_module(name: str):
    """`bridges/<name>/bridge.py` as a module of its own name, `<name>_bridge` (every bridge's
    file is called bridge.py)."""
    path = os.path.join(REPO, "bridges", name, "bridge.py")
    spec = importlib.util.spec_from_file_location(f"{name}_bridge", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def play_expert_subtasks(client, max_steps: int) -> tuple[list[tuple[str, str | None]], bool]:
    """Plays the expert's advice (`env/expertAction`) from the current state until the episode
    ends, the expert has no action, or `max_steps` actions; asking again must give the same
    advice. Returns the (action, subtask) pairs played and whether the episode ended won."""
    played, won = [], False
    for _ in range(max_steps):
        advice = client.expert_advice()
        if advice["action"] is None:
            break
        assert advice == client.expert_advice()  # asking again changes nothing
        played.append((advice["action"], advice["subtask"]))
        s = client.step(advice["action"])
        if s["done"]:
            won = s["won"]
            break
    return played, won


def subtask_groups(pairs) -> list[tuple[str | None, list[str]]]:
    """[(subtask, [actions...]), ...] from consecutive (action, subtask) pairs: a subtask is a run
    of actions with the same name."""
    out: list[tuple[str | None, list[str]]] = []
    for action, subtask in pairs:
        if out and out[-1][0] == subtask:
            out[-1][1].append(action)
        else:
            out.append((subtask, [action]))
    return out


def _session_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[4])
    except (OSError, IndexError, ValueError):
        return None
