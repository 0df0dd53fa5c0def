"""Training throughput of a model config on this machine (synthetic packed rows), for sizing a
run before starting it: tokens/s of full BC steps (forward, backward, AdamW)."""

from __future__ import annotations

import time

import numpy as np
import torch

from . import model as M
from .packing import Item, collate, pack_rows
from .tokenizer import PAD
from .trainer import adamw


def measure(vocab: int, seq_len: int, batch_rows: int, threads: int, steps: int,
            sample_len: int = 200, target_len: int = 12, seed: int = 0, **sizes) -> dict:
    torch.set_num_threads(threads)
    model = M.new_model(M.make_config(vocab, **sizes), seed).train()
    opt = adamw(model, 1e-4, 0.1)
    rng = np.random.default_rng(seed)
    n = batch_rows * (seq_len // sample_len + 1) * 2
    items = [Item(rng.integers(4, vocab, size=sample_len), sample_len - target_len)
             for _ in range(n)]
    rows = pack_rows([sample_len] * n, range(n), seq_len)[:batch_rows]
    b = collate(items, rows, PAD)
    times = []
    for _ in range(steps + 2):  # two warm-up steps
        t = time.perf_counter()
        loss = -M.target_logprobs(model, M.hidden_states(model.model, b), b).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    med = float(np.median(times[2:]))
    return {"command": "throughput", "threads": threads, "seq_len": seq_len,
            "batch_rows": batch_rows, "tokens_per_step": b["tokens"],
            "seconds_per_step": round(med, 3), "tokens_per_s": round(b["tokens"] / med, 1),
            "parameters": M.n_params(model), "vocab": vocab}
