"""Behaviour cloning: next-token loss on the target tokens only (the prompt is context), over
packed rows, for all roles with one model."""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from . import model as M
from .dataset import read_dataset
from .packing import Item, batches, collate, pack_rows
from .tokenizer import PAD, encode_prompts, encode_targets, load_tokenizer
from .trainer import (Progress, adamw, cosine_schedule, load_checkpoint, pick_heldout, rng_state,
                      save_run, set_rng_state, summary, write_policy_folder)
from .util import UserError, file_in, log, seed_everything, set_threads


def encode_samples(tok, samples: list[dict], max_len: int, chunk: int = 4096) -> list[Item | None]:
    """Items in sample order; None for a sample longer than `max_len` tokens (the model's
    positions), which training skips."""
    dtype = np.uint16 if tok.get_vocab_size() <= 65535 else np.int32  # 2 bytes a token
    items: list[Item | None] = []
    for i in range(0, len(samples), chunk):
        part = samples[i:i + chunk]
        ps = encode_prompts(tok, [s["prompt"] for s in part])
        ts = encode_targets(tok, [s["target"] for s in part])
        for p, t in zip(ps, ts):
            n = len(p) + len(t)
            items.append(Item(np.asarray(p + t, dtype=dtype), len(p)) if n <= max_len else None)
    dropped = sum(1 for it in items if it is None)
    if dropped:
        log.warning("%d sample(s) longer than %d tokens skipped", dropped, max_len)
    return items


def nll_by_sample(model, batch: dict) -> torch.Tensor:
    """Per target token negative log-likelihood."""
    h = M.hidden_states(model.model, batch)
    return -M.target_logprobs(model, h, batch)


@torch.no_grad()
def evaluate(model, items: list[Item], roles: list[str], val_batches) -> dict:
    """Mean target-token NLL on the held-out batches, overall and per role."""
    if not val_batches:
        return {}
    model.eval()
    tot, n = defaultdict(float), defaultdict(int)
    for rows in val_batches:
        b = collate(items, rows, PAD)
        nll = nll_by_sample(model, b)
        smp_roles = np.asarray([roles[i] for i in b["samples"]])[b["pred_sample"].numpy()]
        for r in set(smp_roles):
            sel = torch.from_numpy(smp_roles == r)
            tot[r] += float(nll[sel].sum())
            n[r] += int(sel.sum())
    model.train()
    out = {f"val_{r}": tot[r] / n[r] for r in tot}
    out["val_loss"] = sum(tot.values()) / max(1, sum(n.values()))
    return out


def epoch_rows(lengths, train_idx: list[int], seq_len: int, seed: int, epoch: int):
    order = list(train_idx)
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return pack_rows(lengths, order, seq_len)


def run(args) -> dict:
    set_threads(args.threads)
    seed_everything(args.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    samples, manifest = read_dataset(args.data)
    if args.roles:
        keep = set(args.roles.split(","))
        samples = [s for s in samples if s["role"] in keep]
        if not samples:
            raise UserError(f"--roles {args.roles}: no such samples in {args.data}")
    tok = load_tokenizer(args.tokenizer)
    ck_path = out / "checkpoint.pt"
    ck = load_checkpoint(ck_path, "bc") if args.resume else None

    if ck is not None:
        model = M.from_config_dict(ck["config"])
        model.load_state_dict(ck["model"])
        config = model.config
    elif args.init:
        model = M.load_model(args.init)
        config = model.config
    else:
        config = M.make_config(tok.get_vocab_size(), hidden_size=args.hidden,
                               num_hidden_layers=args.layers, num_attention_heads=args.heads,
                               num_key_value_heads=args.kv_heads,
                               intermediate_size=args.intermediate,
                               max_position_embeddings=args.max_positions)
        model = M.new_model(config, args.seed)
    if config.vocab_size < tok.get_vocab_size():
        raise UserError(f"the model's vocabulary ({config.vocab_size}) is smaller than the "
                        f"tokenizer's ({tok.get_vocab_size()})")
    model.train()
    log.info("model: %s, %.2f M parameters", M.config_summary(config), M.n_params(model) / 1e6)

    t0 = time.monotonic()
    items = encode_samples(tok, samples, config.max_position_embeddings)
    lengths = [len(it.ids) if it else 0 for it in items]
    roles = [s["role"] for s in samples]
    train_idx = [i for i, s in enumerate(samples) if items[i] and s["split"] == "train"]
    val_idx = [i for i, s in enumerate(samples) if items[i] and s["split"] == "val"]
    if not train_idx:
        raise UserError("no training samples (every episode is held out? lower --val-fraction "
                        "when building the dataset)")
    val_batches = batches(pack_rows(lengths, val_idx, args.seq_len), args.batch_rows)
    val_batches = val_batches[:args.val_batches]
    rows0 = epoch_rows(lengths, train_idx, args.seq_len, args.seed, 0)
    per_epoch = sum(lengths[i] for i in train_idx)
    steps_per_epoch = math.ceil(len(rows0) / args.batch_rows)
    if args.tokens:
        total = math.ceil(args.tokens / (per_epoch / steps_per_epoch))
    else:
        total = math.ceil(args.epochs * steps_per_epoch)
    log.info("%d train / %d val samples (%.2f M tokens an epoch, %.1f %% of them targets), "
             "%d rows of <= %d tokens (%.0f %% full), %d steps an epoch; %d steps (encoded in "
             "%.1fs)", len(train_idx), len(val_idx), per_epoch / 1e6,
             100 * sum(len(items[i].ids) - items[i].n_prompt for i in train_idx) / per_epoch,
             len(rows0), args.seq_len, 100 * per_epoch / (len(rows0) * args.seq_len),
             steps_per_epoch, total, time.monotonic() - t0)

    opt = adamw(model, args.lr, args.weight_decay)
    warmup = args.warmup_steps if args.warmup_steps is not None else min(200, total // 20)
    sched = cosine_schedule(opt, warmup, total)
    step, epoch, pos, curve = 0, 0, 0, []
    tokens_seen = 0
    if ck is not None:
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        step, epoch, pos, curve, tokens_seen = (ck["step"], ck["epoch"], ck["pos"], ck["curve"],
                                                ck["tokens"])
        total = ck["total"]
        set_rng_state(ck["rng"])
        log.info("resumed from %s at step %d of %d", ck_path, step, total)

    def checkpoint():  # and the loss curve so far
        save_run(ck_path, {
            "kind": "bc", "model": model.state_dict(), "config": config.to_dict(),
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step,
            "epoch": epoch, "pos": pos, "total": total, "curve": curve, "tokens": tokens_seen,
            "rng": rng_state(), "args": vars(args)}, PANELS)

    prog = Progress(total, step, args.checkpoint_minutes, "bc", not args.no_progress)
    ep_batches = batches(epoch_rows(lengths, train_idx, args.seq_len, args.seed, epoch),
                         args.batch_rows)
    last_loss = float("nan")
    try:
        while step < total:
            if pos >= len(ep_batches):
                epoch, pos = epoch + 1, 0
                ep_batches = batches(epoch_rows(lengths, train_idx, args.seq_len, args.seed,
                                                epoch), args.batch_rows)
            prog.start_step()
            b = collate(items, ep_batches[pos], PAD)
            loss = nll_by_sample(model, b).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            sched.step()
            step, pos = step + 1, pos + 1
            tokens_seen += b["tokens"]
            last_loss = loss.item()
            prog.end_step(b["tokens"], loss=last_loss, ep=epoch)
            row = {"step": step, "epoch": epoch, "tokens": tokens_seen, "loss": last_loss,
                   "lr": sched.get_last_lr()[0], "grad_norm": float(gnorm)}
            if step % args.eval_every == 0 or step == total:
                row.update(evaluate(model, items, roles, val_batches))
                log.debug("step %d: loss %.4f, val %s, %.0f tokens/s", step, last_loss,
                          row.get("val_loss"), prog.tokens_per_s)
            curve.append(row)
            if prog.checkpoint_due():
                checkpoint()
    finally:
        prog.close()
    checkpoint()
    heldout = pick_heldout([s for s, it in zip(samples, items) if it])
    write_policy_folder(out, model, file_in(args.tokenizer, "tokenizer.json"), manifest.path, heldout)
    final_val = next((r for r in reversed(curve) if "val_loss" in r), {})
    result = {"command": "bc", "steps": step, "epochs": round(tokens_seen / per_epoch, 3),
              "tokens": tokens_seen, "tokens_per_s": round(prog.tokens_per_s, 1),
              "train_loss": last_loss, "val_loss": final_val.get("val_loss"),
              "val_by_role": {k[4:]: v for k, v in final_val.items()
                              if k.startswith("val_") and k != "val_loss"},
              "parameters": M.n_params(model), "threads": torch.get_num_threads(),
              "seq_len": args.seq_len, "batch_rows": args.batch_rows}
    summary(out, result)
    return result


PANELS = [("loss (target tokens)", ["loss", "val_loss"]),
          ("validation by role", ["val_high", "val_low", "val_progress", "val_full"])]
