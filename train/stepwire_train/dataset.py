"""Records -> training samples: one (prompt, target) per recorded decision, rendered with the
policy manifest's role templates exactly as the runtime renders them at serving time.

A sample is a JSON object: role, prompt, target (the text the model generates after the prompt,
with the runtime's leading space), episode, game, step, split (train/val by a hash of the game,
so every command holds out the same games), outcome, file."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

from .manifest import Manifest, load_manifest
from .records import Episode
from .render import render_state, rtrim, target_text
from .util import UserError, log, stable_fraction, write_json

ROLES = ("high", "low", "progress")


def split_of(game: str, val_fraction: float) -> str:
    return "val" if stable_fraction(game) < val_fraction else "train"


def role_output(m: Manifest, t: dict) -> str:
    """The text a role's policy produced for a recorded transition."""
    if t["level"] == "high":
        return rtrim(t["subtask"])
    if t["level"] == "low":
        return m.low_output(rtrim(t["action"]), t["subtaskDone"])
    return rtrim(t["progress"])


def without_progress(t: dict) -> dict:
    """The states a policy without local progress (`[progress] tracker = "none"`) sees."""
    key = {"high": "lastProgress", "low": "progress"}.get(t["level"])
    if key is None:
        return t
    out = {**t, "state": {**t["state"], key: ""}}
    if t.get("nextState"):
        out["nextState"] = {**t["nextState"], key: ""}
    return out


def transition_sample(m: Manifest, ep: Episode, t: dict, split: str) -> dict:
    if m.tracker == "none":
        t = without_progress(t)
    prompt = render_state(m, t["level"], t["state"])
    return {"role": t["level"], "prompt": prompt, "target": target_text(prompt, role_output(m, t)),
            "episode": ep.id, "game": ep.game, "step": t["step"], "split": split,
            "outcome": ep.outcome, "file": ep.file}


def expert_labelled(ep: Episode) -> list[dict]:
    """The learner's transitions relabelled with what the expert said in the same states
    (recorded by `stepwire run --expert-labels`): DAgger's data.

    * high: the expert's subtask at the plan's step;
    * low: the expert's action, where the learner's subtask is the one the expert is on (else the
      subtask text and the label disagree and the pair teaches nothing); done when the expert's
      subtask at the next step differs, i.e. the learner took the expert's last action of it;
    * progress: the rules tracker's line for the same (subtask, previous progress, action,
      observation)."""
    lows = [t for t in ep.transitions if t["level"] == "low"]
    advice_at = {t["step"]: (t.get("_meta") or {}).get("expert") or {} for t in lows}
    out = []
    for t in ep.transitions:
        meta = t.get("_meta") or {}
        if t["level"] == "progress" and "expertProgress" in meta:
            out.append({**t, "progress": meta["expertProgress"]})
        elif t["level"] == "high":
            advice = meta.get("expert") or {}
            if advice.get("subtask"):
                out.append({**t, "subtask": advice["subtask"]})
        elif t["level"] == "low":
            advice = advice_at.get(t["step"], {})
            action, subtask = advice.get("action"), advice.get("subtask")
            if not action or (subtask and subtask != t["state"]["subtask"]):
                continue
            following = advice_at.get(t["step"] + 1)
            if following is None:
                done = t["action"] == action and ep.outcome == "won"
            else:
                done = t["action"] == action and following.get("subtask") != subtask
            out.append({**t, "action": action, "subtaskDone": done})
    return out


def build_samples(episodes, m: Manifest, roles=ROLES, val_fraction: float = 0.05,
                  labels: str = "recorded") -> list[dict]:
    """Samples of `roles` as the manifest's policy sees them: with `[progress] tracker = "none"`
    the progress fields are empty; with "history" (the flat full-history baseline) one low
    sample per action, progress being the episode so far."""
    if m.tracker == "history":
        from .history import full_history_samples

        out = []
        for ep in episodes:
            out += full_history_samples(ep, m, split_of(ep.game, val_fraction))
        return out
    out = []
    for ep in episodes:
        split = split_of(ep.game, val_fraction)
        transitions = expert_labelled(ep) if labels == "expert" else ep.transitions
        out += [transition_sample(m, ep, t, split) for t in transitions if t["level"] in roles]
    return out


def check_stops(samples: list[dict], m: Manifest) -> int:
    """Outputs holding a stop string: the runtime would cut them there."""
    bad = sum(1 for s in samples if any(x in s["target"] for x in m.stop))
    if bad:
        log.warning("%d target(s) contain a stop string of the manifest (%s); the runtime cuts "
                    "generation there", bad, m.stop)
    return bad


def summarize(samples: list[dict]) -> dict:
    by = Counter((s["role"], s["split"]) for s in samples)
    return {"samples": len(samples),
            "by_role": {f"{r}/{sp}": n for (r, sp), n in sorted(by.items())},
            "episodes": len({(s["file"], s["episode"]) for s in samples}),
            "val_episodes": len({(s["file"], s["episode"]) for s in samples if s["split"] == "val"})}


def write_dataset(out: Path, samples: list[dict], manifest: Manifest, meta: dict) -> dict:
    """`out/samples.jsonl`, `out/manifest.toml` (the templates and composition used, a tracker
    override included) and `out/summary.json`."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "samples.jsonl.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for s in samples:
            fh.write(json.dumps(s, ensure_ascii=False) + "\n")
    tmp.replace(out / "samples.jsonl")
    target = out / "manifest.toml"
    if manifest.path.resolve() != target.resolve():
        shutil.copyfile(manifest.path, target)
        if manifest.tracker != str(manifest.raw.get("progress", {}).get("tracker", "model")):
            text = target.read_text(encoding="utf-8")
            if "progress" in manifest.raw:
                raise UserError(f"{manifest.path}: has a [progress] table; edit it rather than "
                                "overriding the tracker")
            target.write_text(text.rstrip("\n") + f'\n\n[progress]\ntracker = "{manifest.tracker}"\n',
                              encoding="utf-8")
    summary = {**summarize(samples), **meta}
    write_json(out / "summary.json", summary)
    return summary


def read_dataset(path: Path) -> tuple[list[dict], Manifest]:
    """Samples and the manifest they were rendered with (a directory written by `dataset`)."""
    path = Path(path)
    f = path / "samples.jsonl"
    if not f.is_file():
        raise UserError(f"{path}: no samples.jsonl here; build one with "
                        f"`python -m stepwire_train dataset --records ... --out {path}`")
    with open(f, encoding="utf-8") as fh:
        samples = [json.loads(line) for line in fh if line.strip()]
    if not samples:
        raise UserError(f"{f}: no samples")
    roles = sorted({s["role"] for s in samples})
    return samples, load_manifest(path / "manifest.toml", roles=roles)
