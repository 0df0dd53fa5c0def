"""Small shared helpers: errors, logging to stderr, seeding, atomic writes."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from pathlib import Path

# The runtime reads models offline; so does training (configs only, never the hub).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[2]
TRAIN_DIR = REPO / "train"
DEFAULT_MANIFEST = TRAIN_DIR / "manifests" / "compact.toml"
FULL_HISTORY_MANIFEST = TRAIN_DIR / "manifests" / "full-history.toml"
RECORD_SCHEMA = REPO / "schemas" / "record.line.json"

log = logging.getLogger("stepwire_train")


class UserError(Exception):
    """An error the user can fix; the CLI prints it as one line without a traceback."""


def setup_logging(verbose: bool = False) -> None:
    # Our own messages at INFO; libraries (optimum, onnxruntime's quantizer) only warnings.
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="stepwire-train: %(message)s")
    log.setLevel(logging.DEBUG if verbose else logging.INFO)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, n))


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def file_in(path: str | Path, name: str, missing: str | None = None) -> Path:
    """`path`, or `path/<name>` when `path` is a folder (a run or policy folder given for one of
    its files). With `missing`: a UserError "<file>: <missing>" when there is no such file."""
    p = Path(path)
    if p.is_dir():
        p = p / name
    if missing is not None and not p.is_file():
        raise UserError(f"{p}: {missing}")
    return p


def write_json(path: Path, obj, indent: int | None = 1) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by `key`: the same episode lands in the same split in every
    command and run, whatever files it came from."""
    h = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64
