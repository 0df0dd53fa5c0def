"""Writers for the tokens-per-step comparison: CSV, JSON, a Markdown table and a PNG plot."""

from __future__ import annotations

import csv
from pathlib import Path

from .util import write_json


def _f(x, nd=1):
    return "" if x is None else f"{x:.{nd}f}"


def markdown(res: dict, max_rows: int = 25) -> str:
    rows = res["rows"]
    stride = max(1, len(rows) // max_rows)
    lines = [f"Prompt tokens per environment step ({res['episodes']} episodes; STEP-HRL = high + "
             "low + progress prompts recorded at that step).", "",
             "| step | episodes | STEP-HRL | full history |", "| ---: | ---: | ---: | ---: |"]
    for r in rows[::stride]:
        lines.append(f"| {r['step']} | {r['episodes']} | {_f(r['hrl_mean'])} | "
                     f"{_f(r['full_mean'])} |")
    lines += ["", f"Mean over all steps: STEP-HRL {_f(res['hrl_mean'])}, full history "
              f"{_f(res['full_mean'])} tokens. Slope (tokens per extra step, steps "
              f"{res['slope_steps']}): STEP-HRL {_f(res['hrl_slope'], 2)}, full history "
              f"{_f(res['full_slope'], 2)}.", ""]
    return "\n".join(lines)


def write_tokens_per_step(out: Path, res: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "tokens_per_step.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["step", "episodes", "hrl_mean", "full_mean"])
        w.writeheader()
        w.writerows(res["rows"])
    write_json(out / "tokens_per_step.json", res)
    (out / "tokens_per_step.md").write_text(markdown(res))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for key, label in (("hrl_mean", "STEP-HRL (high + low + progress)"),
                       ("full_mean", "full history (flat)")):
        pts = [(r["step"], r[key]) for r in res["rows"] if r[key] is not None]
        if pts:
            ax.plot(*zip(*pts), label=label)
    ax.set_xlabel("environment step")
    ax.set_ylabel("prompt tokens (mean over episodes)")
    ax.set_title("Prompt size per step")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "tokens_per_step.png", dpi=100)
    plt.close(fig)
