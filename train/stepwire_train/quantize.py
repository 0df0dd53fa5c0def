"""Quantise a policy's weights with ONNX Runtime's own tool (MatMulNBits, weight-only, blockwise):
int4 or int8 weights for every MatMul with a constant weight, the LM head included, activations
and the KV cache kept in float.

The input is a policy folder (`stepwire.toml` + an Optimum `model.onnx`, external data allowed) or
a bare `model.onnx`; the output is a policy folder stepwire serves as it is. A tied LM head
(Optimum computes `Transpose(embedding)` at run time, which no quantiser can touch) is first
materialised as its own weight, so the largest matrix of a small-vocabulary-heavy model is
quantised too; the embedding lookup stays float (a decode step reads one row of it).

Afterwards the quantised model is compared with the original on the folder's `expected.json`
prompts, teacher-forced: at every position where the original's top-1 logit leads its top-2 by
at least `--min-gap`, do both pick the same token? The summary line reports that agreement."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from .util import UserError, log, write_json

# Above this the weights go to `model.onnx_data` beside the graph (protobuf stops at 2 GB, and
# stepwire reads and rewrites the graph file at load: weights outside it are not copied through).
EXTERNAL_DATA_OVER = 100_000_000
# Files of a policy folder that describe the float model and are not carried over (besides the
# model file named by the manifest and its external data).
FLOAT_ONLY = {"expected.json", "quantization.json"}


def _model_path(src: Path) -> tuple[Path, Path | None]:
    """(model.onnx, the policy folder or None)."""
    if src.is_dir():
        manifest = src / "stepwire.toml"
        if not manifest.exists():
            raise UserError(f"{src} has no stepwire.toml; give a policy folder or a model.onnx")
        import tomllib
        onnx_name = tomllib.loads(manifest.read_text()).get("model", {}).get("onnx", "model.onnx")
        path = src / onnx_name
        if not path.exists():
            raise UserError(f"{path} (named by {manifest}) does not exist")
        return path, src
    if src.suffix != ".onnx" or not src.exists():
        raise UserError(f"{src} is neither a policy folder nor an existing .onnx file")
    return src, None


def untie_lm_head(model) -> int:
    """Replaces `Transpose(initializer)` feeding a MatMul by a transposed copy of the initializer,
    so that the quantiser sees a constant weight. Returns how many were materialised."""
    from onnx import numpy_helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    done = 0
    for n in list(g.node):
        if n.op_type != "Transpose" or n.domain not in ("", "ai.onnx") or n.input[0] not in inits:
            continue
        users = consumers.get(n.output[0], [])
        if not users or any(u.op_type != "MatMul" for u in users):
            continue
        perm = next((list(a.ints) for a in n.attribute if a.name == "perm"), None)
        weight = numpy_helper.to_array(inits[n.input[0]], base_dir="")
        copy = np.ascontiguousarray(weight.transpose(perm) if perm else weight.T)
        g.initializer.append(numpy_helper.from_array(copy, n.output[0]))
        g.node.remove(n)
        done += 1
    return done


def quantize(model, bits: int, block_size: int, symmetric: bool, accuracy_level: int):
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    # The quantiser logs every node it looks at (thousands of lines) at INFO.
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    q = MatMulNBitsQuantizer(model, bits=bits, block_size=block_size, is_symmetric=symmetric,
                             accuracy_level=accuracy_level)
    q.process()
    return q.model.model


def _session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _teacher_forced_logits(sess, ids: list[int]) -> np.ndarray:
    """Logits `[len(ids), vocab]` of one pass over `ids` (empty past)."""
    inputs = {i.name: i for i in sess.get_inputs()}
    n = len(ids)
    feed = {"input_ids": np.array([ids], dtype=np.int64),
            "attention_mask": np.ones((1, n), dtype=np.int64)}
    if "position_ids" in inputs:
        feed["position_ids"] = np.arange(n, dtype=np.int64)[None, :]
    for name, meta in inputs.items():
        if name.startswith("past_key_values."):
            _, heads, _, dim = meta.shape
            feed[name] = np.zeros((1, heads, 0, dim), dtype=np.float32)
    return sess.run(["logits"], feed)[0][0]


def agreement(original: Path, quantised: Path, expected: Path, min_gap: float, threads: int) -> dict:
    """Top-1 agreement of the quantised model with the original over the expected.json prompts
    and their recorded outputs, at positions where the original's decision is clear."""
    cases = json.loads(expected.read_text())["prompts"]
    a, b = _session(original, threads), _session(quantised, threads)
    clear = agree = total = 0
    for case in cases:
        ids = case["prompt_ids"] + case["output_ids"]
        la, lb = _teacher_forced_logits(a, ids), _teacher_forced_logits(b, ids)
        start = len(case["prompt_ids"]) - 1
        for pos in range(start, len(ids) - 1):
            top2 = np.sort(la[pos])[-2:]
            total += 1
            if top2[1] - top2[0] < min_gap:
                continue
            clear += 1
            agree += int(np.argmax(la[pos]) == np.argmax(lb[pos]))
    return {"positions": total, "clear_positions": clear, "agreeing": agree,
            "agreement": round(agree / clear, 4) if clear else None, "min_gap": min_gap}


def quantised_expected(src_expected: Path, model: Path, tokenizer: Path, source: dict) -> dict:
    """expected.json for the quantised model: the source's prompts and batches with the greedy
    tokens of onnxruntime's loop over the quantised graph (transformers cannot run MatMulNBits),
    keeping those whose every greedy decision has a clear top-1/top-2 gap, so that stepwire must
    reproduce them token for token whatever its batch shape or prefix cache."""
    from tokenizers import Tokenizer

    from .export import MIN_LOGIT_GAP, _fixture_builder

    bt = _fixture_builder()
    exp = json.loads(src_expected.read_text())
    tok = Tokenizer.from_file(str(tokenizer))
    eos, pad = exp["special_tokens"]["eos"], exp["special_tokens"]["pad"]
    n = exp["generation"]["max_new_tokens"]
    runner = bt.OrtGreedy(model)
    kept_prompts, kept_batches, gaps, dropped = [], [], [], []
    for p in exp["prompts"]:
        (out,), gap = runner.generate([p["prompt_ids"]], [[1] * len(p["prompt_ids"])], n, eos, pad)
        if gap < MIN_LOGIT_GAP:
            dropped.append(p["name"])
            continue
        out = bt.strip_after_eos(out, eos, pad)
        kept_prompts.append(p | {"output_ids": out, "output_text": tok.decode(out, skip_special_tokens=True)})
        gaps.append(gap)
    for b in exp["batches"]:
        outs, gap = runner.generate(b["input_ids"], b["attention_mask"], n, eos, pad)
        if gap < MIN_LOGIT_GAP:
            dropped.append(b["name"])
            continue
        outs = [bt.strip_after_eos(o, eos, pad) for o in outs]
        kept_batches.append(b | {"output_ids": outs,
                                 "output_text": [tok.decode(o, skip_special_tokens=True) for o in outs]})
        gaps.append(gap)
    if not kept_prompts:
        raise UserError(f"no prompt of {src_expected} has clear greedy decisions on the quantised "
                        f"model (all gaps < {MIN_LOGIT_GAP}); it is too far from the original")
    if dropped:
        log.info("left out of the quantised expected.json (a greedy gap < %s): %s", MIN_LOGIT_GAP,
                 ", ".join(dropped))
    return exp | {
        "model": model.parent.name, "min_logit_gap": round(min(gaps), 6), "prompts": kept_prompts,
        "batches": kept_batches, "quantization": source,
        "generation": exp["generation"] | {
            "method": f"onnxruntime greedy loop over the quantised model.onnx "
                      f"(max_new_tokens={n}); the original's tokens are in its own expected.json",
        },
        "model_onnx_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
    }


def run(a) -> dict:
    return quantize_folder(Path(a.model), Path(a.out), a.bits, a.block_size, a.symmetric,
                           a.accuracy_level, check=not a.no_check, min_gap=a.min_gap, threads=a.threads)


def quantize_folder(model: Path, out: Path, bits: int, block_size: int = 32, symmetric: bool = True,
                    accuracy_level: int = 4, check: bool = True, min_gap: float = 1.0,
                    threads: int = 1) -> dict:
    """Quantises a policy folder (or a bare model.onnx) into the policy folder `out`."""
    import onnx

    src, folder = _model_path(model)
    if out.resolve() == (folder or src.parent).resolve():
        raise UserError("--out must be another folder than the model's own")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    log.info("loading %s", src)
    model = onnx.load(str(src), load_external_data=True)
    untied = untie_lm_head(model)
    if untied:
        log.info("materialised %d transposed weight(s) (a tied LM head) so they are quantised too", untied)
    log.info("quantising every constant-weight MatMul to int%d (block %d, %s, accuracy level %d)",
             bits, block_size, "symmetric" if symmetric else "asymmetric", accuracy_level)
    qmodel = quantize(model, bits, block_size, symmetric, accuracy_level)
    nbits = sum(1 for n in qmodel.graph.node if n.op_type == "MatMulNBits")
    plain = sum(1 for n in qmodel.graph.node if n.op_type == "MatMul")

    if folder is not None:
        for f in folder.iterdir():
            if f.is_file() and f.name not in FLOAT_ONLY and not f.name.startswith(src.name):
                shutil.copy2(f, out / f.name)
    # Under the name the (copied) manifest gives it.
    dst = out / src.name
    for stale in [*out.glob(src.name + "*"), out / "expected.json"]:
        stale.unlink(missing_ok=True)
    external = qmodel.ByteSize() > EXTERNAL_DATA_OVER
    onnx.save_model(qmodel, str(dst), save_as_external_data=external, all_tensors_to_one_file=True,
                    location=src.name + "_data")
    seconds = time.time() - t0

    def size(p: Path) -> int:
        return sum(f.stat().st_size for f in p.parent.glob(p.name + "*") if f.is_file())

    import onnxruntime

    res = {"command": "quantize", "model": str(src), "out": str(out), "bits": bits,
           "block_size": block_size, "symmetric": symmetric, "accuracy_level": accuracy_level,
           "matmul_nbits": nbits, "float_matmuls": plain, "untied_weights": untied,
           "bytes_before": size(src), "bytes_after": size(dst), "external_data": external,
           "seconds": round(seconds, 1),
           "versions": {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}}
    expected = folder / "expected.json" if folder else None
    if expected is not None and expected.exists() and check:
        res["agreement"] = agreement(src, dst, expected, min_gap, threads)
        log.info("top-1 agreement with the original at clear positions: %s", res["agreement"])
        source = {k: res[k] for k in ("bits", "block_size", "symmetric", "accuracy_level")}
        source["from"] = folder.name
        write_json(out / "expected.json", quantised_expected(expected, dst, out / "tokenizer.json", source))
    write_json(out / "quantization.json", res)
    return res
