"""Shared fixtures. Torch tests are marked `torch` (deselect with -m 'not torch'); everything runs
on CPU with one thread and tiny models, in seconds."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TRAIN = Path(__file__).resolve().parents[1]
REPO = TRAIN.parent
DATA = Path(__file__).resolve().parent / "data"
sys.path.insert(0, str(TRAIN))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

EXPERT = DATA / "lockbox-expert.jsonl"    # stepwire run --env lockbox --policy expert --episodes 16 --seed 3
ROLLOUTS = DATA / "lockbox-rules.jsonl"   # stepwire run --env lockbox --policy rules --episodes 8 --seed 5 --max-steps 8
TINY = ["--hidden", "32", "--layers", "2", "--heads", "2", "--kv-heads", "1",
        "--intermediate", "64", "--threads", "1", "--seq-len", "256", "--batch-rows", "4",
        "--no-progress"]


def pytest_configure(config):
    config.addinivalue_line("markers", "torch: needs torch (and transformers)")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def stepwire_binary() -> Path | None:
    """A built `stepwire` with the lockbox bridge beside it (debug first, then release)."""
    for d in (REPO / "target" / "debug", REPO / "target" / "release"):
        if (d / "stepwire").is_file() and (d / "lockbox-bridge").is_file():
            return d / "stepwire"
    return None


def cli(*args) -> dict:
    """Runs a command in-process; returns its summary (the stdout JSON line)."""
    import contextlib
    import io
    import json

    from stepwire_train.__main__ import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main([str(a) for a in args])
    assert rc == 0, f"command failed: {args}"
    return json.loads(buf.getvalue().strip().splitlines()[-1])


@pytest.fixture(scope="session")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stepwire-train")


@pytest.fixture(scope="session")
def dataset(work) -> Path:
    out = work / "data"
    cli("dataset", "--records", EXPERT, "--out", out, "--val-fraction", "0.25")
    return out


@pytest.fixture(scope="session")
def tokenizer(work, dataset) -> Path:
    out = work / "tokenizer.json"
    cli("tokenizer", "--data", dataset, "--out", out, "--vocab-size", "400")
    return out


@pytest.fixture(scope="session")
def bc_run(work, dataset, tokenizer):
    pytest.importorskip("torch")
    out = work / "bc"
    res = cli("bc", "--data", dataset, "--tokenizer", tokenizer, "--out", out, "--epochs", "40",
              "--lr", "5e-3", "--eval-every", "50", *TINY)
    return out, res


@pytest.fixture(scope="session")
def exported(work, bc_run):
    pytest.importorskip("optimum.exporters.onnx")
    out = work / "policy"
    res = cli("export", "--from", bc_run[0], "--out", out, "--int8", work / "policy-int8")
    return out, res
