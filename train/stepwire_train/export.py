"""Export a trained policy to a folder stepwire serves (`--policy DIR`), in the layout of
models/tiny-llama: model.onnx (optimum-onnx, text-generation-with-past, one file), tokenizer.json,
config.json, stepwire.toml, io.json and expected.json (held-out prompts with transformers' greedy
tokens, which an onnxruntime loop over the export must reproduce exactly)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
import tomllib
import warnings
from pathlib import Path

import torch

from . import model as M
from .manifest import RUNTIME_ROLES, load_manifest, parse_manifest, runtime_tables
from .tokenizer import BOS, EOS, PAD, UNK, encode_prompts, load_tokenizer
from .util import REPO, UserError, log, write_json

MIN_LOGIT_GAP = 0.01  # as the fixtures: float noise between runtimes cannot flip such a token
SIZE_WARN = 20e6


def _fixture_builder():
    """scripts/build-test-models.py, for its greedy loops (transformers and onnxruntime), so the
    fixtures and trained policies are checked by the same code."""
    path = REPO / "scripts" / "build-test-models.py"
    spec = importlib.util.spec_from_file_location("stepwire_build_test_models", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def choose_prompts(bt, model, tok, heldout: list[dict], roles, per_role: int):
    """Held-out prompts whose greedy decisions all have a clear top-1/top-2 logit gap, and
    their transformers outputs."""
    chosen = []
    for role in roles:
        pool = [s for s in heldout if s["role"] == role]
        got = 0
        for k, s in enumerate(pool[:8 * per_role]):
            ids = encode_prompts(tok, [s["prompt"]])[0]
            (out,), gap = bt.hf_generate(model, [ids], [[1] * len(ids)])
            out = bt.strip_after_eos(out, EOS, PAD)
            if gap < MIN_LOGIT_GAP or any(t in (UNK, BOS, PAD) for t in out):
                log.info("prompt %s/%d skipped: logit gap %.4f", role, k, gap)
                continue
            chosen.append({"name": f"{role}_{got}", "role": role, "sample": s, "ids": ids,
                           "out": out, "gap": gap})
            got += 1
            if got == per_role:
                break
        if got == 0:
            raise UserError(f"no held-out {role} prompt with a logit gap >= {MIN_LOGIT_GAP} "
                            f"among {min(len(pool), 8 * per_role)}; is the model trained?")
    return chosen


def manifest_text(m, roles, progress_tracker: str | None = None,
                  temperature: float | None = None) -> str:
    head = ["# stepwire policy manifest (written by `python -m stepwire_train export`; the",
            "# templates are the training manifest's, so training and serving render alike)",
            "[model]", 'onnx = "model.onnx"', 'tokenizer = "tokenizer.json"',
            "roles = [" + ", ".join(f'"{r}"' for r in roles) + "]",
            'eos_token = "</s>"', 'bos_token = "<s>"', 'pad_token = "<pad>"', ""]
    # [high] and [progress] say which roles deterministic policies write (the training manifest's
    # choice, or --progress-tracker); a model role they replace stays in the file, unused.
    if temperature is not None and not temperature >= 0:
        raise UserError(f"--temperature must be >= 0, not {temperature}")
    return "\n".join(head) + "\n" + runtime_tables(m, progress_tracker, temperature)


def run(args) -> dict:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True, warn_only=True)
    src, out = Path(args.src), Path(args.out)
    bt = _fixture_builder()
    model = M.load_model(src / "hf").eval()
    tok = load_tokenizer(src / "tokenizer.json")
    hpath = src / "heldout.jsonl"
    if not hpath.is_file():
        raise UserError(f"{hpath}: missing; export reads a `bc` or `rl` output folder")
    heldout = [json.loads(x) for x in hpath.read_text().splitlines() if x.strip()]
    roles = [r for r in RUNTIME_ROLES if any(s["role"] == r for s in heldout)]
    if not roles:
        raise UserError("this model serves no runtime role (high, low, progress)")
    m = load_manifest(src / "manifest.toml", roles=roles)

    chosen = choose_prompts(bt, model, tok, heldout, roles, per_role=2)
    prefix_lens = {r: len(encode_prompts(tok, [m.template(r).prefix()])[0])
                   for r in roles if m.template(r).prefix()}
    first = [c for c in chosen if c["name"].endswith("_0")]
    second = [c for c in chosen if c["name"].endswith("_1")][:2]
    groups = [g for g in (first, second) if len(g) >= 2]
    batch_out = []
    for members in groups:
        ids, mask = bt.left_pad([c["ids"] for c in members], PAD)
        outs, _ = bt.hf_generate(model, ids, mask)
        for c, o in zip(members, outs):
            if bt.strip_after_eos(o, EOS, PAD) != c["out"]:
                raise UserError(f"transformers gives {c['name']} different tokens batched than "
                                "alone; the export would not be checkable")
        batch_out.append((members, ids, mask, outs))

    work = Path(tempfile.mkdtemp(prefix="stepwire-export-"))
    try:
        hf_dir, onnx_dir = work / "hf", work / "onnx"
        model.save_pretrained(hf_dir, safe_serialization=True)
        bt.wrap_tokenizer(tok).save_pretrained(hf_dir)
        log.info("exporting with optimum-onnx (text-generation-with-past)")
        from optimum.exporters.onnx import main_export

        kw = {"opset": args.opset} if args.opset else {}
        with warnings.catch_warnings():  # tracer chatter about shapes fixed at export time
            warnings.simplefilter("ignore")
            main_export(str(hf_dir), output=str(onnx_dir), task="text-generation-with-past",
                        device="cpu", do_validation=True, library_name="transformers", **kw)
        files = sorted(p.name for p in onnx_dir.glob("*.onnx*"))
        if files != ["model.onnx"]:
            raise UserError(f"expected optimum to write exactly model.onnx, got {files}")
        out.mkdir(parents=True, exist_ok=True)
        for stale in ("model.onnx", "model.onnx_data", "expected.json", "io.json"):
            (out / stale).unlink(missing_ok=True)
        shutil.copyfile(onnx_dir / "model.onnx", out / "model.onnx")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    runner = bt.OrtGreedy(out / "model.onnx")
    n = bt.MAX_NEW_TOKENS
    for c in chosen:
        plen = prefix_lens.get(c["role"], 0)
        for chunk in ([0, plen] if plen else [0]):
            got, _ = runner.generate([c["ids"]], [[1] * len(c["ids"])], n, EOS, PAD,
                                     prefix_len=chunk)
            if got[0] != c["out"]:
                raise UserError(f"onnxruntime != transformers for {c['name']}"
                                f"{' (prefix prefilled apart)' if chunk else ''}:\n"
                                f"  ort: {got[0]}\n  hf:  {c['out']}")
    for members, ids, mask, outs in batch_out:
        got, _ = runner.generate(ids, mask, n, EOS, PAD)
        if got != [row[:len(got[0])] for row in outs]:
            raise UserError(f"onnxruntime != transformers for the batch of "
                            f"{[c['name'] for c in members]}:\n  ort: {got}\n  hf:  {outs}")
    log.info("onnxruntime greedy loop equals transformers token for token (%d prompts, "
             "prefix prefilled apart too; %d left-padded batches)", len(chosen), len(batch_out))

    tok.save(str(out / "tokenizer.json"), pretty=False)
    cfg = json.loads(model.config.to_json_string())
    cfg.pop("transformers_version", None)
    (out / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    text = manifest_text(m, roles, args.progress_tracker, args.temperature)
    check = parse_manifest(tomllib.loads(text), out / "stepwire.toml", roles)
    if any(check.templates[r].text != m.templates[r].text for r in roles):
        raise UserError("the written stepwire.toml does not round-trip the templates")
    (out / "stepwire.toml").write_text(text)
    io = {"inputs": [{"name": i.name, "type": i.type, "shape": i.shape}
                     for i in runner.sess.get_inputs()],
          "outputs": [{"name": o.name, "type": o.type, "shape": o.shape}
                      for o in runner.sess.get_outputs()]}
    write_json(out / "io.json", io)
    expected = expected_json(bt, model, tok, chosen, batch_out, prefix_lens, out)
    write_json(out / "expected.json", expected)
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    if size > SIZE_WARN:
        log.warning("%s is %.1f MB (over %.0f MB): a smaller model or vocabulary keeps policies "
                    "light", out, size / 1e6, SIZE_WARN / 1e6)
    result = {"command": "export", "out": str(out), "bytes": size, "roles": roles,
              "prompts_checked": len(chosen), "batches_checked": len(batch_out),
              "min_logit_gap": expected["min_logit_gap"], "parameters": M.n_params(model)}
    if args.int8:
        result["int8"] = export_int8(out, Path(args.int8))
    return result


def expected_json(bt, model, tok, chosen, batch_out, prefix_lens, out: Path) -> dict:
    import onnxruntime as ort
    import transformers

    dec = lambda ids: tok.decode(ids, skip_special_tokens=True)  # noqa: E731  (the runtime's text)
    cfg = model.config
    return {
        "model": out.name, "architecture": cfg.architectures[0] if cfg.architectures
        else "LlamaForCausalLM", "num_layers": cfg.num_hidden_layers,
        "num_key_value_heads": cfg.num_key_value_heads, "head_dim": cfg.head_dim,
        "vocab_size": cfg.vocab_size, "parameters": M.n_params(model), "seed": None,
        "min_logit_gap": round(min(c["gap"] for c in chosen), 6),
        "special_tokens": {"bos": BOS, "eos": EOS, "pad": PAD, "unk": UNK},
        "generation": {
            "method": f"transformers generate(do_sample=False, max_new_tokens={bt.MAX_NEW_TOKENS})"
                      ", PyTorch, fp32",
            "max_new_tokens": bt.MAX_NEW_TOKENS, "eos_token_id": EOS, "pad_token_id": PAD,
            "stop_strings_applied": False,
            "note": "Prompts are held-out samples of the training data, rendered with the "
                    "policy's templates, chosen so every greedy decision has a top-1/top-2 logit "
                    f"gap >= {MIN_LOGIT_GAP}. output_ids stop after </s>; output_text is their "
                    "text with special tokens skipped (as the runtime decodes). Batched rows are "
                    "left-padded; position_ids = cumsum(attention_mask) - 1. prefix_len = ids of "
                    "the template text before its first placeholder.",
        },
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "onnxruntime": ort.__version__},
        "model_onnx_sha256": bt.sha256(out / "model.onnx"),
        "prompts": [{"name": c["name"], "role": c["role"], "fields": None,
                     "source": {k: c["sample"].get(k) for k in ("episode", "step", "file")},
                     "prompt": c["sample"]["prompt"], "prompt_ids": c["ids"],
                     "prompt_len": len(c["ids"]), "prefix_len": prefix_lens.get(c["role"]),
                     "output_ids": c["out"], "output_text": dec(c["out"])} for c in chosen],
        "batches": [{"name": "batch_" + "_".join(c["name"] for c in members),
                     "padding_side": "left", "members": [c["name"] for c in members],
                     "input_ids": ids, "attention_mask": mask, "output_ids": outs,
                     "output_text": [dec(bt.strip_after_eos(o, EOS, PAD)) for o in outs]}
                    for members, ids, mask, outs in batch_out],
    }


def export_int8(src: Path, dst: Path) -> dict:
    """An int8 copy through `quantize` (MatMulNBits, block 32, the LM head included), with its
    own expected.json and the agreement with the fp32 model in quantization.json."""
    from .quantize import quantize_folder

    res = quantize_folder(src, dst, bits=8)
    return {k: res[k] for k in ("bytes_after", "matmul_nbits")} | {
        "agreement": res.get("agreement"), "out": str(dst)}
