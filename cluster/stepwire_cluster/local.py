"""A Ray cluster of several node processes on loopback, for the tests and the benchmark.

Each node is one `ray start --block` in its own session (process group), so a node can be
killed as a whole (a lost machine) and every process the cluster started is stopped at the
end, by process group, without touching any other Ray on the machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

READY = "block forever"  # what `ray start --block` logs once its node is up
OBJECT_STORE_BYTES = 100 * 1024 * 1024


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Ray starts its worker processes in process groups of their own,
    so a node is its process tree, not one group)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def free_port() -> int:
    # Outside Ray's default worker-port range (10002-19999): the OS's ephemeral ports.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    def __init__(self, workdir: str | None = None, ray_bin: str | None = None):
        # Ray's unix socket paths must stay short: a temp dir of our own directly under /tmp.
        self.tmp = tempfile.mkdtemp(prefix="swray-", dir="/tmp" if os.path.isdir("/tmp") else None)
        self.logs = Path(workdir or self.tmp)
        self.ray = ray_bin or shutil.which("ray", path=os.path.dirname(sys.executable)) or "ray"
        self.nodes: list[subprocess.Popen] = []
        self.address: str | None = None
        # Lost nodes are noticed within seconds, not Ray's default half a minute.
        self.env = {
            **os.environ,
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_health_check_period_ms": "1000",
            "RAY_health_check_timeout_ms": "1000",
            "RAY_health_check_failure_threshold": "3",
        }

    def _start(self, name: str, args: list[str], timeout: float = 90.0) -> subprocess.Popen:
        log_path = self.logs / f"ray-{name}.log"
        log = open(log_path, "w")
        proc = subprocess.Popen(
            [self.ray, "start", *args, "--object-store-memory", str(OBJECT_STORE_BYTES), "--block"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
        )
        self.nodes.append(proc)
        deadline = time.monotonic() + timeout
        while READY not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray node {name} did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        return proc

    def start_head(self, num_cpus: int = 0) -> str:
        port = free_port()
        self._start("head", [
            "--head", "--port", str(port), "--num-cpus", str(num_cpus), "--include-dashboard=false",
            "--dashboard-port", str(free_port()), "--temp-dir", self.tmp,
        ])
        self.address = f"127.0.0.1:{port}"
        return self.address

    def add_worker(self, num_cpus: int = 1) -> subprocess.Popen:
        assert self.address, "start the head first"
        return self._start(f"worker{len(self.nodes)}", ["--address", self.address, "--num-cpus", str(num_cpus)])

    @staticmethod
    def kill_node(node: subprocess.Popen) -> None:
        """A lost machine: every process of the node dies at once."""
        tree = descendants(node.pid)
        try:
            os.killpg(node.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _kill(tree, signal.SIGKILL)
        node.wait()

    def stop(self) -> None:
        trees = [t for node in self.nodes for t in descendants(node.pid)]
        for node in reversed(self.nodes):
            try:
                os.killpg(node.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        for node in self.nodes:
            try:
                node.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(node.pid, signal.SIGKILL)  # whatever of the group is left
            except ProcessLookupError:
                pass
        _kill(trees, signal.SIGKILL)  # and of the trees (workers in groups of their own)
        self.nodes.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()
