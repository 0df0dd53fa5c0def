"""Packing: several samples per row up to `seq_len` tokens, each with its own positions
(restarting at 0) and a block-diagonal causal mask, so no sample sees another. transformers
4.57's Llama takes a 4D mask as-is (masking_utils returns it untouched); with sdpa a boolean
mask (True = attend) is all it needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Item:
    ids: list[int]      # prompt ids (with <s>) then target ids (with </s>)
    n_prompt: int


def pack_rows(lengths, order, seq_len: int, open_rows: int = 8) -> list[list[int]]:
    """Item indices per row, first-fit over a few open rows (rows come out ~95 % full without
    sorting the data). An item longer than `seq_len` gets a row of its own."""
    rows: list[list[int]] = []
    live: list[list] = []  # [room, items]
    for i in order:
        n = lengths[i]
        if n > seq_len:
            rows.append([i])
            continue
        for r in live:
            if r[0] >= n:
                r[0] -= n
                r[1].append(i)
                break
        else:
            live.append([seq_len - n, [i]])
            if len(live) > open_rows:
                full = min(range(len(live)), key=lambda k: live[k][0])
                rows.append(live.pop(full)[1])
    rows += [r[1] for r in live]
    return rows


def collate(items: list[Item], rows: list[list[int]], pad_id: int) -> dict:
    """Tensors of one batch of packed rows. pred_* index the target tokens (flat position of the
    hidden state that predicts each, its label, its sample); v_idx / q_idx are each sample's
    last prompt token and last token; `samples` maps batch order to item indices."""
    width = max(sum(len(items[i].ids) for i in row) for row in rows)
    b = len(rows)
    ids = np.full((b, width), pad_id, dtype=np.int64)
    pos = np.zeros((b, width), dtype=np.int64)
    seg = np.full((b, width), -1, dtype=np.int64)
    pred_idx, pred_lab, pred_smp, v_idx, q_idx, samples = [], [], [], [], [], []
    for r, row in enumerate(rows):
        o = 0
        for i in row:
            it = items[i]
            n, p = len(it.ids), it.n_prompt
            ids[r, o:o + n] = it.ids
            pos[r, o:o + n] = np.arange(n)
            seg[r, o:o + n] = len(samples)
            base = r * width + o
            pred_idx.append(np.arange(base + p - 1, base + n - 1))
            pred_lab.append(np.asarray(it.ids[p:], dtype=np.int64))
            pred_smp.append(np.full(n - p, len(samples), dtype=np.int64))
            v_idx.append(base + p - 1)
            q_idx.append(base + n - 1)
            samples.append(i)
            o += n
        pos[r, o:] = np.arange(width - o)  # padding: a block of its own, never read
    segt = torch.from_numpy(seg)
    causal = torch.ones(width, width, dtype=torch.bool).tril_()
    mask = (segt[:, :, None] == segt[:, None, :]) & causal
    return {
        "input_ids": torch.from_numpy(ids), "position_ids": torch.from_numpy(pos),
        "attn_mask": mask[:, None], "pred_idx": torch.from_numpy(np.concatenate(pred_idx)),
        "pred_labels": torch.from_numpy(np.concatenate(pred_lab)),
        "pred_sample": torch.from_numpy(np.concatenate(pred_smp)),
        "v_idx": torch.tensor(v_idx), "q_idx": torch.tensor(q_idx), "samples": samples,
        "tokens": int((seg >= 0).sum()), "targets": int(sum(len(x) for x in pred_lab)),
    }


def batches(rows: list[list[int]], batch_rows: int) -> list[list[list[int]]]:
    return [rows[i:i + batch_rows] for i in range(0, len(rows), batch_rows)]
