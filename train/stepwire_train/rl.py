"""Offline hierarchical RL from the BC policy (the paper's recipe) on expert + rollout recordings.

Critic: a copy of the BC decoder with V and Q heads (one output per level, high and low) on the
last hidden state; V reads the end of the prompt (the state), Q the end of the output (state and
action). V is fitted by expectile regression toward Q (tau 0.95: V approaches the best actions'
value, not the average), Q by TD toward r + gamma * V_target(s') with done masks; the target
critic is a Polyak average. Actor: the BC model, trained on advantage-weighted log-likelihood,
weight exp(beta * (Q - V)) clipped. The progress role, when the model serves it, keeps plain
BC (weight 1); roles the manifest gives to rules are not trained.

The critic has its own decoder so its regression never perturbs the language model it judges;
the target critic costs memory, not compute (it replaces the online critic for V(s'))."""

from __future__ import annotations

import copy
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import model as M
from .bc import encode_samples
from .dataset import role_output, split_of, without_progress
from .manifest import load_manifest
from .packing import Item, batches, collate, pack_rows
from .records import iter_episodes, parse_outcomes
from .render import render_state, target_text
from .tokenizer import PAD, encode_prompts, load_tokenizer
from .trainer import (Progress, adamw, cosine_schedule, load_checkpoint, rng_state,
                      save_run, set_rng_state, summary, write_policy_folder)
from .util import UserError, log, seed_everything, set_threads

LEVELS = {"high": 0, "low": 1, "progress": 2}


@dataclass
class Transition:
    level: int
    prompt: str
    target: str
    next_prompt: str | None  # None: terminal (or no critic: progress)
    reward: float
    group: int               # 0 expert, 1 rollout
    split: str
    episode: str


def transitions_of(ep, m, group: int, reward_mode: str, scale: float, val_fraction: float):
    split = split_of(ep.game, val_fraction)
    won = ep.outcome == "won"
    last = {}
    for i, t in enumerate(ep.transitions):
        last[t["level"]] = i
    out = []
    served = m.model_roles()
    for i, t in enumerate(ep.transitions):
        lvl = t["level"]
        if lvl not in served:  # written by rules when the policy plays: nothing to learn
            continue
        if m.tracker == "none":
            t = without_progress(t)
        prompt = render_state(m, lvl, t["state"])
        nxt = None
        if lvl != "progress" and not t["done"] and t.get("nextState"):
            nxt = render_state(m, lvl, t["nextState"])
        if reward_mode == "success":
            r = 1.0 if (won and lvl != "progress" and last[lvl] == i) else 0.0
        else:
            r = float(t["reward"]) * scale
        out.append(Transition(LEVELS[lvl], prompt, target_text(prompt, role_output(m, t)), nxt, r,
                              group, split, ep.id))
    return out


class Critic(torch.nn.Module):
    def __init__(self, backbone, hidden: int):
        super().__init__()
        self.backbone = backbone
        self.v = torch.nn.Linear(hidden, 2)
        self.q = torch.nn.Linear(hidden, 2)
        for head in (self.v, self.q):  # start at 0: the first advantages are 0, i.e. plain BC
            torch.nn.init.zeros_(head.weight)
            torch.nn.init.zeros_(head.bias)

    def forward(self, batch, level: torch.Tensor):
        h = M.hidden_states(self.backbone, batch)
        lv = level.clamp(max=1)[:, None]
        v = self.v(h.index_select(0, batch["v_idx"])).gather(1, lv)[:, 0]
        q = self.q(h.index_select(0, batch["q_idx"])).gather(1, lv)[:, 0]
        return v, q


def expectile_loss(diff: torch.Tensor, tau: float) -> torch.Tensor:
    w = torch.where(diff > 0, tau, 1 - tau)
    return (w * diff.pow(2)).mean()


def parse_mix(text: str) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in text.split(":"))
        assert a >= 0 and b >= 0 and a + b > 0
    except (ValueError, AssertionError):
        raise UserError(f"--mix {text!r}: expected EXPERT:ROLLOUT, e.g. 1:2") from None
    return a, b


def run(args) -> dict:
    set_threads(args.threads)
    seed_everything(args.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    init, out = Path(args.init), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.expert and not args.rollouts:
        raise UserError("give recordings: --expert FILE... and/or --rollouts FILE...")
    manifest = load_manifest(init / "manifest.toml", roles=())
    if manifest.tracker == "history":
        raise UserError("offline RL here is for STEP-HRL policies; the flat full-history baseline "
                        "is trained by `bc` only")
    tok = load_tokenizer(init / "tokenizer.json")
    outcomes = parse_outcomes(args.outcomes)
    mix = parse_mix(args.mix)

    trans: list[Transition] = []
    n_eps = [0, 0]
    for group, files in enumerate((args.expert, args.rollouts)):
        if not files:
            continue
        for ep in iter_episodes(files, skip_invalid=args.skip_invalid, outcomes=outcomes):
            n_eps[group] += 1
            trans += transitions_of(ep, manifest, group, args.reward, args.reward_scale,
                                    args.val_fraction)
    if not trans:
        raise UserError("no transitions in the recordings (check --outcomes)")
    log.info("%d expert and %d rollout episodes, %d transitions", n_eps[0], n_eps[1], len(trans))

    ck_path = out / "checkpoint.pt"
    ck = load_checkpoint(ck_path, "rl") if args.resume else None
    actor = M.load_model(init / "hf")
    maxlen = actor.config.max_position_embeddings
    items = encode_samples(tok, [{"prompt": t.prompt, "target": t.target} for t in trans], maxlen)
    nxt_ids = encode_prompts(tok, [t.next_prompt or "" for t in trans])
    nxt_items = [Item(np.asarray(ids), len(ids)) if t.next_prompt and len(ids) <= maxlen else None
                 for t, ids in zip(trans, nxt_ids)]
    train = np.asarray([i for i, t in enumerate(trans) if items[i] and t.split == "train"])
    val = [i for i, t in enumerate(trans) if items[i] and t.split == "val"]
    if len(train) == 0:
        raise UserError("no training transitions")
    # Sampling weight: each group gets its share of episodes, each episode all its transitions.
    groups = np.asarray([trans[i].group for i in train])
    share = np.asarray([mix[g] / max(1, n_eps[g]) if n_eps[g] else 0.0 for g in (0, 1)])
    p = share[groups]
    p = p / p.sum()
    lengths = [len(it.ids) if it else 0 for it in items]
    mean_len = float(np.mean([lengths[i] for i in train]))
    per_step = max(1, round(args.batch_rows * args.seq_len / mean_len))
    if args.steps:
        total = args.steps
    elif args.tokens:
        total = math.ceil(args.tokens / (per_step * mean_len))
    else:
        total = math.ceil(len(train) / per_step)
    val_batches = batches(pack_rows(lengths, val, args.seq_len), args.batch_rows)[:args.val_batches]
    levels = torch.tensor([t.level for t in trans])
    rewards = torch.tensor([t.reward for t in trans], dtype=torch.float32)

    critic = Critic(copy.deepcopy(actor.model), actor.config.hidden_size)
    target = copy.deepcopy(critic).requires_grad_(False)
    actor.train()
    critic.train()
    opt_a = adamw(actor, args.lr, args.weight_decay)
    opt_c = adamw(critic, args.critic_lr, args.weight_decay)
    warm = args.warmup_steps if args.warmup_steps is not None else min(200, total // 20)
    sch_a = cosine_schedule(opt_a, warm, total)
    sch_c = cosine_schedule(opt_c, warm, total)
    rng = np.random.default_rng(args.seed)
    step, tokens_seen, curve = 0, 0, []
    if ck is not None:
        actor.load_state_dict(ck["actor"])
        critic.load_state_dict(ck["critic"])
        target.load_state_dict(ck["target"])
        for o, k in ((opt_a, "opt_a"), (opt_c, "opt_c"), (sch_a, "sch_a"), (sch_c, "sch_c")):
            o.load_state_dict(ck[k])
        step, tokens_seen, curve, total = ck["step"], ck["tokens"], ck["curve"], ck["total"]
        rng.bit_generator.state = ck["np_rng"]
        set_rng_state(ck["rng"])
        log.info("resumed from %s at step %d of %d", ck_path, step, total)
    log.info("%d steps of %d transitions (~%d tokens); %d train / %d val transitions",
             total, per_step, per_step * mean_len, len(train), len(val))

    def checkpoint():  # and the loss curve so far
        save_run(ck_path, {
            "kind": "rl", "actor": actor.state_dict(), "critic": critic.state_dict(),
            "target": target.state_dict(), "opt_a": opt_a.state_dict(),
            "opt_c": opt_c.state_dict(), "sch_a": sch_a.state_dict(), "sch_c": sch_c.state_dict(),
            "step": step, "tokens": tokens_seen, "curve": curve, "total": total,
            "np_rng": rng.bit_generator.state, "rng": rng_state(), "args": vars(args)}, PANELS)

    prog = Progress(total, step, args.checkpoint_minutes, "rl", not args.no_progress)
    row = {}
    try:
        while step < total:
            prog.start_step()
            pick = train[rng.choice(len(train), size=per_step, p=p)]
            b = collate(items, pack_rows(lengths, pick.tolist(), args.seq_len), PAD)
            idx = torch.tensor(b["samples"])
            lvl, r = levels[idx], rewards[idx]
            crit = lvl < 2
            # TD target from the target critic at s' (0 at terminal states).
            has_next = [k for k, i in enumerate(b["samples"]) if nxt_items[i] is not None]
            v_next = torch.zeros(len(idx))
            if has_next:
                nidx = [b["samples"][k] for k in has_next]
                nb = collate(nxt_items, pack_rows(_lens(nxt_items, nidx), nidx, args.seq_len), PAD)
                with torch.no_grad():
                    vn, _ = target(nb, levels[torch.tensor(nb["samples"])])
                pos = {i: k for k, i in enumerate(nb["samples"])}
                v_next[has_next] = vn[[pos[b["samples"][k]] for k in has_next]]
            y = r + args.gamma * v_next
            v, q = critic(b, lvl)
            if crit.any():
                q_loss = torch.nn.functional.mse_loss(q[crit], y[crit])
                v_loss = expectile_loss(q.detach()[crit] - v[crit], args.expectile)
                opt_c.zero_grad(set_to_none=True)
                (q_loss + v_loss).backward()
                torch.nn.utils.clip_grad_norm_(critic.parameters(), args.clip)
                opt_c.step()
                with torch.no_grad():
                    for pt, pc in zip(target.parameters(), critic.parameters()):
                        pt.lerp_(pc, args.target_tau)
            else:
                q_loss = v_loss = torch.zeros(())
            sch_c.step()
            adv = (q - v).detach()
            w = torch.exp(args.beta * adv).clamp(max=args.max_weight)
            w = torch.where(crit, w, torch.ones_like(w))
            lp = M.target_logprobs(actor, M.hidden_states(actor.model, b), b)
            a_loss = -(w[b["pred_sample"]] * lp).sum() / max(1, b["targets"])
            if step >= args.critic_warmup:
                opt_a.zero_grad(set_to_none=True)
                a_loss.backward()
                torch.nn.utils.clip_grad_norm_(actor.parameters(), args.clip)
                opt_a.step()
            sch_a.step()
            step += 1
            tokens_seen += b["tokens"]
            q, v = q.detach(), v.detach()
            row = {"step": step, "tokens": tokens_seen, "actor_loss": a_loss.item(),
                   "nll": -lp.detach().mean().item(), "q_loss": q_loss.item(),
                   "v_loss": v_loss.item(),
                   "q_mean": float(q[crit].mean()) if crit.any() else None,
                   "v_mean": float(v[crit].mean()) if crit.any() else None,
                   "adv_mean": float(adv[crit].mean()) if crit.any() else None,
                   "weight_mean": float(w[crit].mean()) if crit.any() else None,
                   "lr": sch_a.get_last_lr()[0]}
            if step % args.eval_every == 0 or step == total:
                row["val_nll"] = _val_nll(actor, items, val_batches)
            curve.append(row)
            prog.end_step(b["tokens"], actor=row["actor_loss"], q=row["q_loss"], v=row["v_loss"])
            if prog.checkpoint_due():
                checkpoint()
    finally:
        prog.close()
    checkpoint()
    heldout_src = init / "heldout.jsonl"
    write_policy_folder(out, actor, init / "tokenizer.json", init / "manifest.toml", [])
    if heldout_src.is_file():
        shutil.copyfile(heldout_src, out / "heldout.jsonl")
    torch.save({"critic": critic.state_dict()}, out / "critic.pt")
    result = {"command": "rl", "steps": step, "tokens": tokens_seen,
              "tokens_per_s": round(prog.tokens_per_s, 1),
              "expert_episodes": n_eps[0], "rollout_episodes": n_eps[1],
              **{k: row.get(k) for k in ("actor_loss", "nll", "q_loss", "v_loss", "q_mean",
                                         "v_mean", "adv_mean", "weight_mean")},
              "val_nll": next((r["val_nll"] for r in reversed(curve) if "val_nll" in r), None)}
    summary(out, result)
    return result


def _lens(items, idx) -> dict[int, int]:
    return {i: len(items[i].ids) for i in idx}


@torch.no_grad()
def _val_nll(actor, items, val_batches):
    if not val_batches:
        return None
    actor.eval()
    tot = n = 0.0
    for rows in val_batches:
        b = collate(items, rows, PAD)
        lp = M.target_logprobs(actor, M.hidden_states(actor.model, b), b)
        tot, n = tot - float(lp.sum()), n + lp.numel()
    actor.train()
    return tot / max(1, n)


PANELS = [("actor", ["actor_loss", "nll", "val_nll"]), ("critic", ["q_loss", "v_loss"]),
          ("values", ["q_mean", "v_mean", "adv_mean", "weight_mean"])]
