"""The full-history baseline: a flat policy (train/manifests/full-history.toml: the whole task as
the one subtask, `[high] planner = "whole-task"`; every earlier action and what it led to as the
progress, `[progress] tracker = "history"`), and the prompt-size comparison with STEP-HRL's three
compact prompts. The runtime composes the same policy from the same manifest (sdk/src/rules.rs
`WholeTaskPlanner`, `HistoryProgress`), so what trains here is what plays there."""

from __future__ import annotations

from collections import defaultdict

from .manifest import Manifest
from .records import Episode
from .render import render_state, rtrim, target_text


def whole_task(task: str) -> str:
    """`WholeTaskPlanner`'s subtask: the task's first line, trimmed."""
    return rtrim(task.split("\n")[0].removesuffix("\r"))


def history_append(previous: str, action: str, observation_text: str) -> str:
    """`HistoryProgress::append`: `> action` then the text it led to, one entry after another."""
    entry = f"> {rtrim(action)}\n{rtrim(observation_text)}"
    return f"{previous}\n{entry}" if previous else entry


def full_history_prompts(ep: Episode, m: Manifest) -> list[tuple[dict, str]]:
    """(low transition, flat prompt) for each action of the episode, in step order: the low
    template with the whole task as subtask and the history so far as progress."""
    lows = sorted(ep.level("low"), key=lambda t: t["step"])
    highs = ep.level("high")
    task = highs[0]["state"]["task"] if highs else ep.summary.get("taskDescription", "")
    subtask = whole_task(task)
    out, history = [], ""
    for t in lows:
        state = {"subtask": subtask, "progress": history, "observation": t["state"]["observation"]}
        out.append((t, render_state(m, "low", state)))
        history = history_append(history, t["action"], t["nextState"]["observation"]["text"])
    return out


def full_history_samples(ep: Episode, m: Manifest, split: str) -> list[dict]:
    """One sample per action; the target is the action alone (a flat policy never ends a
    subtask, so it never writes the done flag)."""
    return [{"role": "low", "prompt": p, "target": target_text(p, rtrim(t["action"])),
             "episode": ep.id, "game": ep.game, "step": t["step"], "split": split,
             "outcome": ep.outcome, "file": ep.file}
            for t, p in full_history_prompts(ep, m)]


def _lengths(tokenizer, texts: list[str]) -> list[int]:
    return [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=True)]


def tokens_per_step(records, manifest: Manifest, tokenizer,
                    full_manifest: Manifest, min_episodes: int = 3) -> dict:
    """Prompt tokens per environment step, averaged over episodes, for STEP-HRL (every prompt of
    a role the manifest's model serves, recorded at that step: a progress record's step is the
    action it summarises) and for the full-history prompt; and the least-squares slope of each mean curve
    (tokens per extra step) over the steps that at least `min_episodes` episodes reach."""
    hrl = defaultdict(list)
    full = defaultdict(list)
    n_eps = 0
    for ep in records:
        n_eps += 1
        per_step = defaultdict(int)
        roles = [t for t in ep.transitions if t["level"] in manifest.model_roles()]
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
