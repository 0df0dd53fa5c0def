//! Quantised policies (folders written by `stepwire_train quantize`: int4/int8 `MatMulNBits`
//! weights) against the float models they came from. Their own `expected.json` (onnxruntime's
//! greedy tokens over the quantised graph) is checked token for token by `expected.rs`, like
//! every bundled policy; here, that they load with the load-time rewrites applied and that they
//! pick the float model's tokens wherever the float model's decision is clear.

mod common;

use std::path::PathBuf;

use common::{bundled_policies, expected, ids, init_logs, models_dir, policy_decoder};
use stepwire_onnx::decoder::{Decoder, SessionOptions};

/// A decision is clear when the float model's top-1 logit leads its top-2 by this much: twice the
/// largest logit change int4 quantisation makes on the bundled policy's prompts (1.1).
const CLEAR_GAP: f32 = 2.0;

/// (quantised folder, float folder it was made from).
fn quantised_pairs() -> Vec<(PathBuf, PathBuf)> {
    let pairs: Vec<(PathBuf, PathBuf)> = bundled_policies()
        .into_iter()
        .filter_map(|dir| {
            let from = expected(&dir)["quantization"]["from"].as_str()?.to_string();
            Some((dir, models_dir().join(from)))
        })
        .collect();
    assert!(!pairs.is_empty(), "no quantised fixture under models/ (expected.json with `quantization`)");
    pairs
}

fn decoder(dir: &std::path::Path) -> Decoder {
    policy_decoder(dir, SessionOptions { intra_threads: 1, ..SessionOptions::default() })
}

/// Logits after the prompt and after each of `continuation` fed one token at a time.
fn teacher_forced(dec: &mut Decoder, prompt: &[u32], continuation: &[u32]) -> Vec<Vec<f32>> {
    let mut past = dec.empty_kv(1).unwrap();
    let mut fed: Vec<i64> = prompt.iter().map(|&t| t as i64).collect();
    let mut len = 0usize;
    let mut out = Vec::new();
    for step in 0..=continuation.len() {
        let mask = vec![1i64; len + fed.len()];
        let positions: Vec<i64> = (len as i64..(len + fed.len()) as i64).collect();
        let fwd = dec.forward(&fed, &mask, &positions, past).unwrap();
        len += fed.len();
        out.push(fwd.last_logits);
        past = fwd.kv;
        if let Some(&t) = continuation.get(step) {
            fed = vec![t as i64];
        }
    }
    out
}

fn top2(logits: &[f32]) -> (usize, f32) {
    let (mut best, mut a, mut b) = (0, f32::NEG_INFINITY, f32::NEG_INFINITY);
    for (i, &x) in logits.iter().enumerate() {
        if x > a {
            (best, b, a) = (i, a, x);
        } else if x > b {
            b = x;
        }
    }
    (best, a - b)
}

#[test]
fn quantised_models_load_with_the_rewrites_applied() {
    init_logs();
    for (quantised, _) in quantised_pairs() {
        let dec = decoder(&quantised);
        assert!(dec.last_position_logits, "{}: the quantised LM head was not recognised", quantised.display());
        let fold = dec.shape_fold.unwrap_or_else(|| panic!("{}: shape arithmetic not folded", quantised.display()));
        assert!(fold.folded > 0 && fold.nodes_after < fold.nodes_before, "{}: {fold:?}", quantised.display());
    }
}

#[test]
fn quantised_models_pick_the_float_models_tokens_where_its_decisions_are_clear() {
    init_logs();
    for (quantised, float) in quantised_pairs() {
        let (mut q, mut f) = (decoder(&quantised), decoder(&float));
        let exp = expected(&float);
        let special = |k: &str| exp["special_tokens"][k].as_u64().unwrap() as u32;
        let (eos, pad) = (special("eos"), special("pad"));
        let (mut clear, mut total, mut same_outputs, mut clear_prompts) = (0, 0, 0, 0);
        for p in exp["prompts"].as_array().unwrap() {
            let prompt = ids(&p["prompt_ids"]);
            let out = ids(&p["output_ids"]);
            let (lf, lq) = (teacher_forced(&mut f, &prompt, &out), teacher_forced(&mut q, &prompt, &out));
            let mut all_clear = true;
            for (step, (a, b)) in lf.iter().zip(&lq).take(out.len()).enumerate() {
                let (want, gap) = top2(a);
                total += 1;
                if gap < CLEAR_GAP {
                    all_clear = false;
                    continue;
                }
                clear += 1;
                let (got, _) = top2(b);
                assert_eq!(got, want, "{} {} step {step}: float gap {gap:.2}", quantised.display(), p["name"]);
            }
            if all_clear {
                // Where every decision is clear, free greedy decoding must give the same tokens.
                clear_prompts += 1;
                let got =
                    stepwire_onnx::reference::greedy_padded(&mut q, std::slice::from_ref(&prompt), pad, eos, out.len())
                        .unwrap();
                let want: Vec<u32> = out.iter().copied().filter(|&t| t != eos).collect();
                same_outputs += usize::from(got[0] == want);
            }
        }
        // The check must not be vacuous.
        assert!(clear >= 10, "{}: only {clear} of {total} decisions clear", quantised.display());
        eprintln!("{}: {clear} of {total} decisions clear, {clear_prompts} prompts all clear", quantised.display());
        assert_eq!(same_outputs, clear_prompts, "{}: greedy outputs differ", quantised.display());
    }
}
