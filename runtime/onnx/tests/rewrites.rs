//! The load-time graph rewrites change what a pass costs, never what it computes: the rewritten
//! graph gives the export's logits and cache, for padded batches, prefills on top of a cache, and
//! decode steps. On the policy fixtures (Llama, Qwen2) and on one export per other architecture
//! family (`tests/data/archs`, built by `scripts/build-graph-fixtures.py`).

mod common;

use std::path::Path;

use common::{bundled_policies, init_logs};
use stepwire_onnx::decoder::{Decoder, Forward, SessionOptions};
use stepwire_onnx::kv::Kv;
use stepwire_onnx::manifest::Manifest;

/// Inputs of one pass: `rows` new tokens per row on top of `past` columns, row `i` left-padded by
/// `pad[i]` columns of the whole sequence.
struct Pass {
    ids: Vec<i64>,
    mask: Vec<i64>,
    positions: Vec<i64>,
}

fn pass(batch: usize, past: usize, seq: usize, pad: &[usize], seed: i64, vocab: usize) -> Pass {
    let ids = (0..batch * seq).map(|i| 4 + (i as i64 * 7 + seed * 13) % (vocab as i64 - 4)).collect();
    let mut mask = vec![1i64; batch * (past + seq)];
    let mut positions = Vec::with_capacity(batch * seq);
    for (b, &p) in pad.iter().enumerate() {
        for c in 0..p.min(past + seq) {
            mask[b * (past + seq) + c] = 0;
        }
        for j in 0..seq {
            // Position ids count valid tokens only; padding sits at position 1, as generate() does.
            let column = past + j;
            positions.push(if column < p { 1 } else { (column - p) as i64 });
        }
    }
    Pass { ids, mask, positions }
}

fn floats(kv: &Kv) -> Vec<Vec<f32>> {
    kv.tensors.iter().map(|t| t.try_extract_tensor::<f32>().unwrap().1.to_vec()).collect()
}

fn assert_same(a: &Forward, b: &Forward, what: &str) {
    assert_eq!(a.vocab, b.vocab, "{what}: vocab");
    let worst = a.last_logits.iter().zip(&b.last_logits).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-5, "{what}: logits differ by {worst}");
    assert_eq!(a.kv.len, b.kv.len, "{what}: cache length");
    for (i, (x, y)) in floats(&a.kv).iter().zip(floats(&b.kv)).enumerate() {
        let worst = x.iter().zip(&y).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "{what}: cache tensor {i} differs by {worst}");
    }
}

/// Loads `onnx` as exported and rewritten, checks the rewrite applied, and compares a left-padded
/// batch of three from an empty cache, a chunk on top of it, then decode steps.
fn check_rewrite_is_exact(onnx: &Path) {
    let mut export = Decoder::load(onnx, SessionOptions { keep_graph: true, ..Default::default() }).unwrap();
    let mut rewritten = Decoder::load(onnx, SessionOptions::default()).unwrap();
    assert!(export.shape_fold.is_none() && !export.last_position_logits);
    assert!(rewritten.last_position_logits, "{}: logits were not rewritten", onnx.display());
    let fold = rewritten.shape_fold.expect("the export's shape arithmetic is folded");
    eprintln!("{}: {fold:?}", onnx.display());
    assert!(
        fold.nodes_after * 10 <= fold.nodes_before * 6,
        "{}: only {} of {} nodes left out: {fold:?}",
        onnx.display(),
        fold.nodes_before - fold.nodes_after,
        fold.nodes_before
    );
    let vocab = rewritten.spec.vocab.unwrap_or(96);
    let batch = 3;
    let pad = [0, 3, 6];
    let mut past = (export.empty_kv(batch).unwrap(), rewritten.empty_kv(batch).unwrap());
    // 9 + 5 + 4 tokens go past the sliding window (16) of the Mistral and Gemma 2 exports.
    for (step, seq) in [9usize, 5, 1, 1, 1, 1, 1].into_iter().enumerate() {
        let p = pass(batch, past.0.len, seq, &pad, step as i64, vocab);
        let a = export.forward(&p.ids, &p.mask, &p.positions, past.0).unwrap();
        let b = rewritten.forward(&p.ids, &p.mask, &p.positions, past.1).unwrap();
        assert_same(&a, &b, &format!("{} pass {step} ({seq} tokens)", onnx.display()));
        past = (a.kv, b.kv);
    }
}

#[test]
fn rewrites_are_exact_on_the_policy_fixtures() {
    init_logs();
    for dir in bundled_policies() {
        check_rewrite_is_exact(&Manifest::load(&dir).unwrap().models[0].onnx);
    }
}

#[test]
fn rewrites_are_exact_on_other_architectures() {
    init_logs();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/archs");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "onnx") {
            check_rewrite_is_exact(&path);
            seen.push(path.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    seen.sort();
    assert_eq!(seen, ["gemma", "gemma2", "mistral", "phi3"]);
}
