"""`python -m stepwire_cluster run` on a real local Ray cluster (a head and worker node processes
on loopback), playing real TextWorld games with the expert: same plan and report as a local
`stepwire run`, one recording with each episode once, a lost node, an interrupted driver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
import ray  # noqa: F401  (installed by scripts/setup.sh: a missing Ray fails here, not skips)

from conftest import CLUSTER, ROOT, stepwire_bin
from stepwire_cluster.local import LocalCluster, descendants


# 12 TextWorld games (3 tasks x 4 variations), played twice each with --repeat.
RUN = ["--env", "textworld", "--policy", "expert", "--max-steps", "60"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    logs = tmp_path_factory.mktemp("ray-logs")
    c = LocalCluster(workdir=str(logs))
    try:
        c.start_head(num_cpus=0)  # the head only schedules: every episode runs on a worker node
        c.add_worker(num_cpus=1)
        c.add_worker(num_cpus=1)
        yield c
    finally:
        c.stop()


def env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(CLUSTER),
        "STEPWIRE_BIN": stepwire_bin(),
        "STEPWIRE_ROOT": str(ROOT),
        "STEPWIRE_PYTHON": os.environ.get("STEPWIRE_PYTHON", sys.executable),
    }


def driver(cluster: LocalCluster, *args: str) -> list[str]:
    return [sys.executable, "-m", "stepwire_cluster", "run", "--ray", cluster.address, *args]


def lines(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def summaries(path: Path) -> list[str]:
    """Episode ids of the recording's summary lines, in file order."""
    out = []
    for rec in lines(path):
        if rec["kind"] == "episode":
            k = rec["episode"]
            out.append(f"{k['env']}/{k['task']}/{k['split']}/{k['variation']}#{k['repeat']}")
    return out


def wait_for_episodes(path: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and len(summaries(path)) >= n):
        assert proc.poll() is None, f"driver exited early ({proc.returncode})"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.2)


def plan_ids(*args: str) -> list[str]:
    out = subprocess.run([stepwire_bin(), "run", *RUN, *args, "--no-record", "--print-plan"],
                         env=env(), capture_output=True, text=True, check=True)
    return [e["id"] for e in json.loads(out.stdout)["episodes"]]


def test_same_plan_and_report_as_a_local_run(cluster, tmp_path):
    local_rec, ray_rec = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    local = subprocess.run([stepwire_bin(), "run", *RUN, "--jobs", "2", "--record", str(local_rec), "--json", "-q"],
                           env=env(), capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stderr
    dist = subprocess.run(driver(cluster, *RUN, "--record", str(ray_rec), "--json", "--min-success", "1.0"),
                          env=env(), capture_output=True, text=True, timeout=300)
    assert dist.returncode == 0, dist.stderr
    a, b = json.loads(local.stdout), json.loads(dist.stdout)
    assert set(a) == set(b), "the report's shape differs"
    for k in ("env", "split", "policy", "planned", "resumed", "notRun", "episodes", "won", "successRate", "meanSteps"):
        assert a[k] == b[k], k
    assert [r["id"] for r in a["episodeResults"]] == [r["id"] for r in b["episodeResults"]] == plan_ids()
    assert [r["outcome"] for r in a["episodeResults"]] == [r["outcome"] for r in b["episodeResults"]]
    # One recording, each planned episode once, every line a valid record line.
    assert sorted(summaries(ray_rec)) == sorted(plan_ids())
    schema = json.loads((ROOT / "schemas/record.line.json").read_text())
    for rec in lines(ray_rec):
        jsonschema.validate(rec, schema)
    assert len(lines(ray_rec)) == len(lines(local_rec))
    # Both worker nodes played.
    nodes = {l.split("batch on ")[1].rstrip(")") for l in dist.stderr.splitlines() if "batch on " in l}
    assert len(nodes) >= 2, dist.stderr


def test_an_interrupted_driver_resumes(cluster, tmp_path):
    rec = tmp_path / "run.jsonl"
    cmd = driver(cluster, *RUN, "--repeat", "2", "--batch", "1", "--record", str(rec), "--resume", "--json")
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_episodes(rec, 4, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    first = json.loads(out)
    assert first["interrupted"] and first["notRun"] > 0, first
    done = summaries(rec)
    assert len(done) == len(set(done)) >= 4
    # A hard kill mid-write leaves a torn episode behind: the resume cuts it.
    with open(rec, "a") as f:
        f.write('{"kind":"transition","episode":{"env":"textworld","ta')
    again = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["resumed"] == len(done) and report["notRun"] == 0 and report["episodes"] == 24
    assert sorted(summaries(rec)) == sorted(plan_ids("--repeat", "2"))
    # A finished run re-run: nothing left to play, same report.
    third = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr
    assert json.loads(third.stdout)["resumed"] == 24
    assert len(summaries(rec)) == 24


def batch_in_flight(node: subprocess.Popen, timeout: float = 120) -> list[str]:
    """The episode ids of the `stepwire run --only-episodes` playing on `node` (a process below
    the node's `ray start`), read from its ids file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in descendants(node.pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--only-episodes" in argv:
                ids_file = argv[argv.index(b"--only-episodes") + 1].decode()
                try:
                    return Path(ids_file).read_text().split()
                except OSError:
                    continue
        time.sleep(0.1)
    raise AssertionError("no batch ever ran on the node")


def test_a_lost_node_has_its_episodes_played_elsewhere(cluster, tmp_path):
    """Runs last in this module: it kills one of the two worker nodes while it plays a batch."""
    rec = tmp_path / "run.jsonl"
    cmd = driver(cluster, *RUN, "--batch", "2", "--record", str(rec), "--json")
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_episodes(rec, 2, proc)
    victim = cluster.nodes[-1]
    lost = batch_in_flight(victim)
    cluster.kill_node(victim)
    assert not (set(lost) & set(summaries(rec))), "the batch had finished before the kill"
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    report = json.loads(out)
    assert report["episodes"] == 12 and report["notRun"] == 0 and report["failed"] == 0, report
    ids = summaries(rec)
    assert len(ids) == len(set(ids)) == 12, "an episode recorded twice or missing"
    assert sorted(ids) == sorted(plan_ids())
    # The batch that was playing on the lost node was retried by Ray on the other one.
    assert set(lost) <= set(ids)
    assert "lost after Ray's retries" not in err


def test_jobs_no_node_can_hold_are_refused(cluster, tmp_path):
    proc = subprocess.run(driver(cluster, *RUN, "--jobs", "4", "--record", str(tmp_path / "r.jsonl")),
                          env=env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1
    assert "could never be scheduled" in proc.stderr and "Traceback" not in proc.stderr


def test_a_bad_address_is_a_clear_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "stepwire_cluster", "run", "--ray", "127.0.0.1:1", *RUN, "--record", str(tmp_path / "r.jsonl")],
        env={**env(), "RAY_gcs_rpc_server_connect_timeout_s": "3"}, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode != 0
    assert "cannot connect to the Ray cluster" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
