"""python -m stepwire_train <command>: train STEP-HRL policies from stepwire recordings.

Data flow:  stepwire run --record  ->  dataset  ->  tokenizer  ->  bc  ->  export  ->
            stepwire run --record (rollouts)  ->  rl  ->  export  ->  stepwire run (evaluate)

Logs and the progress bar go to stderr; stdout gets one summary line (JSON) per command.
See train/README.md."""

from __future__ import annotations

import argparse
import json
import sys

from .manifest import TRACKERS
from .util import DEFAULT_MANIFEST, FULL_HISTORY_MANIFEST, UserError, default_threads, log, setup_logging


class _Help(argparse.RawDescriptionHelpFormatter):
    """Shows each option's default unless its help already says it."""

    def _get_help_string(self, action):
        h = action.help or ""
        if (action.option_strings and "default" not in h
                and action.default not in (None, False, argparse.SUPPRESS)):
            h += " (default: %(default)s)"
        return h


def _add_train_common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--out", required=True, help="output folder: checkpoint.pt, hf/, loss.csv/png, "
                   "summary.json, tokenizer.json, manifest.toml, heldout.jsonl")
    g.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    g.add_argument("--threads", type=int, default=default_threads(),
                   help="torch CPU threads (default: the CPUs this process may use, here %(default)s)")
    g.add_argument("--seed", type=int, default=1234, help="seeds torch, numpy, random, data order")
    g.add_argument("--seq-len", type=int, default=512,
                   help="packed row length in tokens (a longer sample gets a row of its own)")
    g.add_argument("--batch-rows", type=int, default=8, help="packed rows per optimiser step")
    g.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default: 1e-3 for bc, 5e-5 for the rl actor)")
    g.add_argument("--weight-decay", type=float, default=0.1, help="AdamW decay of matrices")
    g.add_argument("--warmup-steps", type=int, default=None,
                   help="linear warmup before the cosine decay (default: 5%% of steps, <= 200)")
    g.add_argument("--clip", type=float, default=1.0, help="gradient norm clip")
    g.add_argument("--tokens", type=float, default=None,
                   help="token budget (prompt + target tokens); overrides --epochs")
    g.add_argument("--checkpoint-minutes", type=float, default=10.0,
                   help="write OUT/checkpoint.pt this often (and at the end)")
    g.add_argument("--eval-every", type=int, default=200, help="validation loss every N steps")
    g.add_argument("--val-batches", type=int, default=16, help="held-out batches per evaluation")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_model_shape(p) -> None:
    """The decoder's shape for a model made from scratch (`bc`, and `throughput` that sizes one)."""
    p.add_argument("--hidden", type=int, default=256, help="hidden size")
    p.add_argument("--layers", type=int, default=4, help="decoder layers")
    p.add_argument("--heads", type=int, default=4, help="attention heads")
    p.add_argument("--kv-heads", type=int, default=2, help="key/value heads (grouped-query)")
    p.add_argument("--intermediate", type=int, default=704, help="MLP size")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m stepwire_train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def add(name, **kw):
        return sub.add_parser(name, formatter_class=_Help, **kw)

    p = add("dataset", help="render recordings into (prompt, target) samples",
                       description="Reads recordings (every line validated against "
                       "schemas/record.line.json) and renders one sample per recorded decision "
                       "with the manifest's role templates, exactly as the runtime renders "
                       "prompts. Writes OUT/samples.jsonl, OUT/manifest.toml, OUT/summary.json.")
    p.add_argument("--records", nargs="*", default=[],
                   help="recording files (JSONL) whose recorded outputs are the targets (expert "
                        "demonstrations)")
    p.add_argument("--expert-labelled", nargs="*", default=[], metavar="RECORDS",
                   help="recordings made with `stepwire run --expert-labels`: the learner's own "
                        "states, relabelled with the expert's answers (DAgger); every outcome")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--manifest", default=None, help=f"role templates and policy composition (default "
                   f"{DEFAULT_MANIFEST}; the flat full-history baseline: {FULL_HISTORY_MANIFEST})")
    p.add_argument("--roles", default=None, help="roles to include (default: the roles the "
                   "manifest's model serves, i.e. all but those [high] planner or [progress] "
                   "tracker give to rules)")
    p.add_argument("--progress-tracker", choices=TRACKERS, default=None,
                   help="override the manifest's [progress] tracker (written into OUT/manifest.toml): "
                   "none trains the without-progress ablation")
    p.add_argument("--outcomes", default="won", help="episode outcomes to keep, comma separated, "
                   "or all (default won: clone successful demonstrations)")
    p.add_argument("--episodes", type=int, default=None, metavar="N",
                   help="only the first N episodes of --records, in file order and whatever their "
                   "outcome (a smaller training budget from the same recording)")
    p.add_argument("--val-fraction", type=float, default=0.05,
                   help="fraction of games held out for validation (by a hash of the game)")
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip lines that fail the schema (counted) instead of stopping")

    p = add("tokenizer", help="train a byte-level BPE on a dataset",
                       description="Trains a byte-level BPE (special tokens <unk> <s> </s> <pad> = "
                       "0..3; <s> prepended) on the prompts and targets of a dataset, and checks "
                       "that every template prefix tokenizes alike alone and inside prompts.")
    p.add_argument("--data", required=True, help="folder written by `dataset`")
    p.add_argument("--out", required=True, help="tokenizer.json to write")
    p.add_argument("--vocab-size", type=int, default=4000, help="BPE vocabulary size")
    p.add_argument("--max-texts", type=int, default=200_000, help="corpus cap (random sample)")
    p.add_argument("--seed", type=int, default=1234, help="corpus sampling seed")

    p = add("bc", help="behaviour cloning (one decoder, all roles)",
                       description="Trains a Llama-shaped decoder from scratch (or --init) on "
                       "packed samples with the loss on target tokens only; AdamW, warmup + "
                       "cosine, checkpoints, loss curves, validation on held-out games.")
    p.add_argument("--data", required=True, help="folder written by `dataset`")
    p.add_argument("--tokenizer", required=True, help="tokenizer.json (from `tokenizer`)")
    p.add_argument("--roles", default=None, help="train on these roles only (default: all)")
    p.add_argument("--init", default=None, help="start from this hf/ folder instead of scratch")
    p.add_argument("--epochs", type=float, default=3.0, help="passes over the training samples")
    m = p.add_argument_group("model (from scratch)")
    _add_model_shape(m)
    m.add_argument("--max-positions", type=int, default=1024,
                   help="longest prompt + output (longer samples are skipped)")
    _add_train_common(p)

    p = add("rl", help="offline RL on expert + rollout recordings",
                       description="Offline hierarchical RL from the BC policy: a critic (a copy of "
                       "the decoder with V and Q heads per level) learns V by expectile "
                       "regression toward Q and Q by TD toward r + gamma V'(s') (target network); "
                       "the actor maximises advantage-weighted log-likelihood "
                       "exp(beta (Q - V)) (clipped) of its outputs. The progress role is trained "
                       "by BC only.")
    p.add_argument("--init", required=True, help="the `bc` output folder to start from")
    p.add_argument("--expert", nargs="*", default=[], help="expert recordings")
    p.add_argument("--rollouts", nargs="*", default=[], help="the learner's recordings")
    p.add_argument("--mix", default="1:2", help="expert:rollout sampling ratio by episodes")
    p.add_argument("--outcomes", default="won,lost,truncated", help="episode outcomes to use")
    p.add_argument("--val-fraction", type=float, default=0.05,
                   help="games held out (same hash as `dataset`)")
    p.add_argument("--skip-invalid", action="store_true", help="skip lines that fail the schema")
    p.add_argument("--reward", choices=["env", "success"], default="env",
                   help="env: the recorded reward (ALFWorld: 1 on the winning step); success: 1 "
                   "on the last transition of a won episode, else 0 (for shaped scores)")
    p.add_argument("--reward-scale", type=float, default=1.0, help="multiplies env rewards")
    p.add_argument("--gamma", type=float, default=0.99, help="discount per transition of a level")
    p.add_argument("--expectile", type=float, default=0.95, help="expectile of V toward Q")
    p.add_argument("--beta", type=float, default=3.0, help="advantage temperature")
    p.add_argument("--max-weight", type=float, default=100.0, help="clip of exp(beta A)")
    p.add_argument("--target-tau", type=float, default=0.005,
                   help="Polyak rate of the target critic (1 = stop-gradient of the online one)")
    p.add_argument("--critic-lr", type=float, default=3e-4,
                   help="critic learning rate (the actor's --lr defaults to 5e-5 for rl, 1e-3 for bc)")
    p.add_argument("--critic-warmup", type=int, default=0,
                   help="steps that train only the critic before the actor starts")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (default 1 epoch of "
                   "the sampled transitions, or --tokens)")
    _add_train_common(p)

    p = add("export", help="export a trained policy to a stepwire policy folder",
                       description="Exports OUT of `bc`/`rl` with optimum-onnx "
                       "(text-generation-with-past, one model.onnx) into a folder stepwire runs "
                       "(--policy DIR): model.onnx, tokenizer.json, config.json, stepwire.toml, "
                       "io.json, expected.json. Checks that an onnxruntime greedy loop equals "
                       "transformers token for token, and fails otherwise.")
    p.add_argument("--from", dest="src", required=True, help="a `bc` or `rl` output folder")
    p.add_argument("--out", required=True, help="the policy folder to write")
    p.add_argument("--progress-tracker", choices=TRACKERS, default=None,
                   help="who writes local progress when stepwire plays the policy (default: the "
                        "training manifest's [progress] tracker): the model's progress role, the "
                        "rules tracker that labelled the demonstrations, none, or the history; "
                        "written as [progress] tracker in stepwire.toml")
    p.add_argument("--temperature", type=float, default=None, metavar="T",
                   help="the policy's default decoding: sample at T when a request names no "
                        "sampling (written as [generation] temperature; default greedy)")
    p.add_argument("--int8", default=None, metavar="DIR",
                   help="also write an int8 copy to DIR (as `quantize --bits 8`)")
    p.add_argument("--opset", type=int, default=None,
                   help="ONNX opset (default: optimum's, 18 for Llama, as the fixtures)")

    p = add("quantize", help="int4/int8 weights (MatMulNBits) for a policy folder or model.onnx",
                       description="Quantises every MatMul with a constant weight (the LM head "
                       "included, a tied one materialised first) with ONNX Runtime's "
                       "MatMulNBitsQuantizer: blockwise round-to-nearest int4 or int8, float "
                       "activations and KV cache. Writes a policy folder stepwire serves as it is, "
                       "with quantization.json; when the source folder has expected.json, reports "
                       "top-1 agreement with the original at positions where its decision is clear.")
    p.add_argument("--model", required=True, help="a policy folder (stepwire.toml) or a model.onnx")
    p.add_argument("--out", required=True, help="the policy folder to write")
    p.add_argument("--bits", type=int, choices=(4, 8), default=4, help="weight bits")
    p.add_argument("--block-size", type=int, default=32, help="weights per quantisation block")
    p.add_argument("--accuracy-level", type=int, choices=(0, 1, 2, 3, 4), default=4,
                   help="MatMulNBits compute type: 4 = int8 activations (fastest on CPU), "
                        "0 = as the input")
    p.add_argument("--asymmetric", dest="symmetric", action="store_false",
                   help="blocks with a zero point (default: symmetric)")
    p.add_argument("--min-gap", type=float, default=1.0,
                   help="the agreement check counts positions whose top-1 logit leads by this")
    p.add_argument("--threads", type=int, default=default_threads(), help="onnxruntime threads "
                   "for the check")
    p.add_argument("--no-check", action="store_true", help="skip the agreement check")

    p = add("throughput", help="measure BC training tokens/s of a model config",
                       description="Times a few BC steps (forward, backward, AdamW) on synthetic "
                       "packed rows of 200-token samples, to size a run on this machine.")
    for flag, default, what in (("--vocab-size", 4000, "vocabulary"), ("--seq-len", 512, "row length"),
                                ("--batch-rows", 8, "rows a step"),
                                ("--threads", default_threads(), "torch threads"),
                                ("--steps", 5, "timed steps (after 2 warm-up steps)")):
        p.add_argument(flag, type=int, default=default, help=what)
    _add_model_shape(p)

    p = add("tokens-per-step", help="prompt tokens per step: STEP-HRL vs full history",
                       description="From real recordings: mean prompt tokens at each step index "
                       "for STEP-HRL (high + low + progress prompts recorded at that step) and for "
                       "the full-history prompt, with the slope of each; writes a table and a plot.")
    p.add_argument("--records", nargs="+", required=True, help="recording files (JSONL)")
    p.add_argument("--tokenizer", required=True, help="tokenizer.json that counts the tokens")
    p.add_argument("--manifest", default=str(DEFAULT_MANIFEST), help="STEP-HRL role templates; "
                   "only the roles its model serves are counted (a rules tracker's progress is "
                   "no prompt)")
    p.add_argument("--progress-tracker", choices=TRACKERS, default=None,
                   help="override the manifest's [progress] tracker")
    p.add_argument("--full-manifest", default=str(FULL_HISTORY_MANIFEST),
                   help="the full-history template")
    p.add_argument("--outcomes", default="all", help="episode outcomes to count")
    p.add_argument("--skip-invalid", action="store_true", help="skip lines that fail the schema")
    p.add_argument("--out", required=True, help="folder for tokens_per_step.{csv,png,json,md}")
    return ap


def cmd_dataset(a) -> dict:
    from pathlib import Path

    from .dataset import ROLES, build_samples, check_stops, write_dataset
    from .manifest import load_manifest
    from .records import ReadStats, iter_episodes, parse_outcomes

    manifest = load_manifest(a.manifest or DEFAULT_MANIFEST, roles=())
    if a.progress_tracker:
        manifest.tracker = a.progress_tracker
    if a.roles is None:
        roles = manifest.model_roles()
    else:
        roles = tuple(r.strip() for r in a.roles.split(",") if r.strip())
        bad = [r for r in roles if r not in ROLES]
        if bad:
            raise UserError(f"--roles: unknown role {bad[0]!r} (use high, low, progress)")
    for r in roles:
        manifest.template(r)
    if manifest.tracker == "history" and roles != ("low",):
        raise UserError(f"a full-history manifest ([progress] tracker = \"history\") trains the low "
                        f"role only, not {','.join(roles)}")
    if not a.records and not a.expert_labelled:
        raise UserError("give recordings: --records FILE... and/or --expert-labelled FILE...")
    if a.expert_labelled and manifest.tracker == "history":
        raise UserError("--expert-labelled relabels STEP-HRL transitions; not with a full-history manifest")
    stats = ReadStats()
    samples = []
    if a.records:
        episodes = iter_episodes(a.records, skip_invalid=a.skip_invalid,
                                 outcomes=parse_outcomes(a.outcomes), stats=stats,
                                 max_episodes=a.episodes)
        samples += build_samples(episodes, manifest, roles, a.val_fraction)
    if a.expert_labelled:
        episodes = iter_episodes(a.expert_labelled, skip_invalid=a.skip_invalid,
                                 outcomes=parse_outcomes("all"), stats=stats)
        samples += build_samples(episodes, manifest, roles, a.val_fraction, "expert")
    if not samples:
        raise UserError(f"no samples: no episodes with outcome {a.outcomes} (and roles "
                        f"{','.join(roles)}) in {' '.join(a.records + a.expert_labelled)}; "
                        "see --outcomes")
    check_stops(samples, manifest)
    meta = {"command": "dataset", "records": a.records, "expert_labelled": a.expert_labelled,
            "manifest": str(manifest.path), "roles": list(roles), "tracker": manifest.tracker,
            "outcomes": a.outcomes, "val_fraction": a.val_fraction,
            "lines": stats.lines, "invalid_lines": stats.invalid,
            "unclosed_transitions": stats.unclosed}
    return write_dataset(Path(a.out), samples, manifest, meta)


def cmd_tokenizer(a) -> dict:
    from pathlib import Path

    from .dataset import read_dataset
    from .tokenizer import check_prefixes, corpus, encode_prompts, train_tokenizer

    samples, manifest = read_dataset(a.data)
    tok = train_tokenizer(corpus(samples, a.max_texts, a.seed), a.vocab_size)
    by_role = {}
    for s in samples:
        by_role.setdefault(s["role"], [])
        if len(by_role[s["role"]]) < 500:
            by_role[s["role"]].append(s["prompt"])
    prefix_lens = check_prefixes(tok, manifest, by_role)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(out), pretty=False)
    sizes = {r: round(sum(map(len, encode_prompts(tok, p))) / len(p), 1) for r, p in by_role.items()}
    return {"command": "tokenizer", "out": str(out), "vocab_size": tok.get_vocab_size(),
            "prefix_tokens": prefix_lens, "mean_prompt_tokens": sizes}


def cmd_tokens_per_step(a) -> dict:
    from pathlib import Path

    from .history import tokens_per_step
    from .manifest import load_manifest
    from .records import iter_episodes, parse_outcomes
    from .report import write_tokens_per_step
    from .tokenizer import load_tokenizer

    m = load_manifest(a.manifest, roles=())
    if a.progress_tracker:
        m.tracker = a.progress_tracker
    full = load_manifest(a.full_manifest, roles=("low",))
    episodes = iter_episodes(a.records, skip_invalid=a.skip_invalid,
                             outcomes=parse_outcomes(a.outcomes))
    res = tokens_per_step(episodes, m, load_tokenizer(a.tokenizer), full)
    if not res["episodes"]:
        raise UserError("no episodes in the recordings")
    write_tokens_per_step(Path(a.out), res)
    return {"command": "tokens-per-step", "episodes": res["episodes"],
            "hrl_mean": res["hrl_mean"], "full_mean": res["full_mean"],
            "hrl_slope": res["hrl_slope"], "full_slope": res["full_slope"], "out": a.out}


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    setup_logging(a.verbose)
    try:
        if a.cmd == "dataset":
            res = cmd_dataset(a)
        elif a.cmd == "tokenizer":
            res = cmd_tokenizer(a)
        elif a.cmd == "bc":
            from . import bc

            a.lr = a.lr or 1e-3
            res = bc.run(a)
        elif a.cmd == "rl":
            from . import rl

            a.lr = a.lr or 5e-5
            res = rl.run(a)
        elif a.cmd == "export":
            from . import export

            res = export.run(a)
        elif a.cmd == "quantize":
            from . import quantize

            res = quantize.run(a)
        elif a.cmd == "throughput":
            from .throughput import measure

            res = measure(a.vocab_size, a.seq_len, a.batch_rows, a.threads, a.steps,
                          hidden_size=a.hidden, num_hidden_layers=a.layers,
                          num_attention_heads=a.heads, num_key_value_heads=a.kv_heads,
                          intermediate_size=a.intermediate)
        else:
            res = cmd_tokens_per_step(a)
    except UserError as e:
        log.error("error: %s", e)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted (a training run resumes with --resume)")
        return 130
    print(json.dumps(res, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
