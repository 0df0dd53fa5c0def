"""The full-history baseline: a flat policy whose prompt is the task, every earlier observation
and action of the episode, and the current observation (train/manifests/full-history.toml), and
the prompt-size comparison with STEP-HRL's three compact prompts."""

from __future__ import annotations

from collections import defaultdict

from .manifest import Manifest
from .records import Episode
from .render import render_observation, render_state, rtrim, target_text


def _value(m: Manifest, s: str) -> str:
    s = rtrim(s)
    return s if s else m.empty_field


def full_history_prompts(ep: Episode, m: Manifest) -> list[tuple[dict, str]]:
    """(low transition, full-history prompt) for each action of the episode, in step order."""
    lows = sorted(ep.level("low"), key=lambda t: t["step"])
    task = ep.summary.get("taskDescription", "")
    if not rtrim(task):
        highs = ep.level("high")
        task = highs[0]["state"]["task"] if highs else ""
    step_t = m.history_step
    if step_t is None:
        raise ValueError(f"{m.path}: no [history] table (a full-history manifest needs one)")
    tmpl = m.template("full")
    out, past = [], []
    for t in lows:
        obs = render_observation(t["state"]["observation"])
        fields = {"task": _value(m, task), "history": _value(m, m.history_separator.join(past)),
                  "observation": _value(m, obs)}
        out.append((t, tmpl.render(fields, m.empty_field)))
        past.append(step_t.render({"observation": _value(m, obs),
                                   "action": _value(m, t["action"])}, m.empty_field))
    return out


def full_history_samples(ep: Episode, m: Manifest, split: str) -> list[dict]:
    return [{"role": "full", "prompt": p, "target": target_text(p, rtrim(t["action"])),
             "episode": ep.id, "game": ep.game, "step": t["step"], "split": split,
             "outcome": ep.outcome, "file": ep.file}
            for t, p in full_history_prompts(ep, m)]


def _lengths(tokenizer, texts: list[str]) -> list[int]:
    return [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=True)]


def tokens_per_step(records, manifest: Manifest, tokenizer,
                    full_manifest: Manifest, min_episodes: int = 3) -> dict:
    """Prompt tokens per environment step, averaged over episodes, for STEP-HRL (every high, low
    and progress prompt recorded at that step: a progress record's step is the action it
    summarises) and for the full-history prompt; and the least-squares slope of each mean curve
    (tokens per extra step) over the steps that at least `min_episodes` episodes reach."""
    hrl = defaultdict(list)
    full = defaultdict(list)
    n_eps = 0
    for ep in records:
        n_eps += 1
        per_step = defaultdict(int)
        roles = [t for t in ep.transitions if t["level"] in manifest.templates]
        lens = _lengths(tokenizer, [render_state(manifest, t["level"], t["state"]) for t in roles])
        for t, n in zip(roles, lens):
            per_step[t["step"]] += n
        for s, n in per_step.items():
            hrl[s].append(n)
        pairs = full_history_prompts(ep, full_manifest)
        for (t, _), n in zip(pairs, _lengths(tokenizer, [p for _, p in pairs])):
            full[t["step"]].append(n)
    steps = sorted(set(hrl) | set(full))
    rows = [{"step": s, "episodes": len(full.get(s, hrl.get(s, []))),
             "hrl_mean": _mean(hrl.get(s)), "full_mean": _mean(full.get(s))} for s in steps]
    need = min(min_episodes, max((r["episodes"] for r in rows), default=0))
    fit = [r for r in rows if r["episodes"] >= need]
    return {"rows": rows, "episodes": n_eps,
            "hrl_slope": _slope([(r["step"], r["hrl_mean"]) for r in fit]),
            "full_slope": _slope([(r["step"], r["full_mean"]) for r in fit]),
            "hrl_mean": _mean([n for v in hrl.values() for n in v]),
            "full_mean": _mean([n for v in full.values() for n in v]),
            "slope_steps": [fit[0]["step"], fit[-1]["step"]] if fit else None}


def _mean(v):
    return sum(v) / len(v) if v else None


def _slope(points):
    pts = [(x, y) for x, y in points if y is not None]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    den = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / den if den else None
