"""What BC and RL share: optimiser and schedule, checkpoint/resume, the progress bar, loss
curves (CSV + PNG), and the policy folder layout that `export` reads."""

from __future__ import annotations

import csv
import json
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .util import UserError, atomic_write_text, log, write_json


def adamw(model, lr: float, weight_decay: float) -> torch.optim.AdamW:
    # No decay on norms and biases (1-D tensors), the usual choice for decoders.
    params = {id(p): p for p in model.parameters() if p.requires_grad}.values()
    decay = [p for p in params if p.dim() >= 2]
    rest = [p for p in params if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), eps=1e-8)


def cosine_schedule(opt, warmup: int, total: int, floor: float = 0.1):
    """Linear warmup, then cosine decay to `floor` x the peak rate."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
    return torch.optim.lr_scheduler.LambdaLR(opt, f)


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "python": random.getstate()}


def set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])


def save_checkpoint(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a crash mid-write never leaves a broken checkpoint


def save_run(path: Path, state: dict, panels: list[tuple[str, list[str]]]) -> None:
    """A training run's progress so far: the checkpoint `state` at `path`, then its loss curve
    (`state["curve"]`) beside it, loss.csv and loss.png (one panel per (title, columns))."""
    save_checkpoint(path, state)
    write_curve(path.parent, "loss", state["curve"], panels)


def load_checkpoint(path: Path, kind: str) -> dict:
    if not path.is_file():
        raise UserError(f"{path}: no checkpoint to resume from (drop --resume to start afresh)")
    ck = torch.load(path, map_location="cpu", weights_only=False)
    if ck.get("kind") != kind:
        raise UserError(f"{path}: a {ck.get('kind')} checkpoint, not {kind}")
    return ck


class Progress:
    """tqdm on stderr, checkpoint cadence, and token throughput over training time only."""

    def __init__(self, total: int, initial: int, checkpoint_minutes: float, desc: str,
                 enabled: bool = True):
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", file=sys.stderr,
                        dynamic_ncols=True, disable=not enabled, smoothing=0.05,
                        # A log file gets a line every 30 s, a terminal a live bar.
                        mininterval=0.5 if sys.stderr.isatty() else 30.0)
        self.every = checkpoint_minutes * 60
        self.last_ck = time.monotonic()
        self.train_seconds = 0.0
        self.tokens = 0
        self._t = None

    def start_step(self) -> None:
        self._t = time.monotonic()

    def end_step(self, tokens: int, **postfix) -> None:
        self.train_seconds += time.monotonic() - self._t
        self.tokens += tokens
        postfix["tok/s"] = f"{self.tokens_per_s:.0f}"
        self.bar.set_postfix({k: (f"{v:.4f}" if isinstance(v, float) else v)
                              for k, v in postfix.items()}, refresh=False)
        self.bar.update(1)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.train_seconds if self.train_seconds else 0.0

    def checkpoint_due(self) -> bool:
        if time.monotonic() - self.last_ck >= self.every:
            self.last_ck = time.monotonic()
            return True
        return False

    def close(self) -> None:
        self.bar.close()


def write_curve(out: Path, name: str, rows: list[dict], panels: list[tuple[str, list[str]]]) -> None:
    """`out/<name>.csv` and `out/<name>.png` (one panel per (title, columns))."""
    if not rows:
        return
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / f"{name}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (title, keys) in zip(axes[0], panels):
        for k in keys:
            pts = [(r["step"], r[k]) for r in rows if r.get(k) not in (None, "")]
            if pts:
                ax.plot(*zip(*pts), label=k, marker="." if len(pts) < 30 else None)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=100)
    plt.close(fig)


def write_policy_folder(out: Path, model, tokenizer_path: Path, manifest_path: Path,
                        heldout: list[dict]) -> None:
    """What `export` reads: hf/ (weights + config), tokenizer.json, manifest.toml and a few
    held-out samples (the prompts of expected.json)."""
    from .model import save_model

    save_model(model, out / "hf")
    for src, dst in ((tokenizer_path, "tokenizer.json"), (manifest_path, "manifest.toml")):
        if Path(src).resolve() != (out / dst).resolve():
            shutil.copyfile(src, out / dst)
    atomic_write_text(out / "heldout.jsonl",
                      "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in heldout))


def pick_heldout(samples: list[dict], per_role: int = 32) -> list[dict]:
    """Up to `per_role` validation samples of each role (training ones if none are held out)."""
    out = []
    for role in sorted({s["role"] for s in samples}):
        pool = [s for s in samples if s["role"] == role and s["split"] == "val"] or \
               [s for s in samples if s["role"] == role]
        out += pool[:per_role]
    return out


def summary(out: Path, obj: dict) -> None:
    write_json(out / "summary.json", obj)
    log.info("wrote %s", out)
