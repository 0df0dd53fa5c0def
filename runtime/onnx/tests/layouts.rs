//! The onnxruntime-genai model-builder layout (GroupQueryAttention; `genai_config.json` beside
//! the model) against the Optimum layout of the same weights: recognised at load, and the same
//! greedy tokens through the plain loop and through the policy (prefix cache on and off).

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{expected, ids, init_logs, models_dir, policy_decoder};
use stepwire_onnx::decoder::{Decoder, Layout, SessionOptions};
use stepwire_onnx::engine::BatchOptions;
use stepwire_onnx::reference::greedy_padded;
use stepwire_onnx::{GenerateRequest, LoadOptions, OnnxPolicy};
use stepwire_sdk::protocol::Role;
use tokio_util::sync::CancellationToken;

/// (model-builder folder, Optimum folder with the same weights) of each `layout.json` whose
/// precision is `precision`.
fn pairs(precision: &str) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(models_dir()).unwrap().flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path().join("layout.json")) else { continue };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        if v["precision"] == precision {
            out.push((entry.path(), models_dir().join(v["same_weights_as"].as_str().unwrap())));
        }
    }
    assert!(!out.is_empty(), "no {precision} model-builder fixture under models/ (layout.json)");
    out
}

fn decoder(dir: &std::path::Path) -> Decoder {
    policy_decoder(dir, SessionOptions::default())
}

#[test]
fn the_model_builder_layout_is_recognised_and_gives_the_optimum_layouts_tokens() {
    init_logs();
    for (genai, optimum) in pairs("fp32") {
        let (mut g, mut o) = (decoder(&genai), decoder(&optimum));
        assert_eq!(g.spec.layout, Layout::GenaiBuilder);
        assert_eq!(o.spec.layout, Layout::Optimum);
        assert_eq!(
            (g.spec.num_layers, g.spec.kv_heads, g.spec.head_dim),
            (o.spec.num_layers, o.spec.kv_heads, o.spec.head_dim)
        );
        assert!(g.last_position_logits, "{}: the LM head was not recognised", genai.display());
        let exp = expected(&optimum);
        let special = |k: &str| exp["special_tokens"][k].as_u64().unwrap() as u32;
        let n = exp["generation"]["max_new_tokens"].as_u64().unwrap() as usize;
        for p in exp["prompts"].as_array().unwrap() {
            let prompt = ids(&p["prompt_ids"]);
            let want = greedy_padded(&mut o, std::slice::from_ref(&prompt), special("pad"), special("eos"), n).unwrap();
            let got = greedy_padded(&mut g, &[prompt], special("pad"), special("eos"), n).unwrap();
            assert_eq!(got, want, "{} {}", genai.display(), p["name"]);
            let recorded: Vec<u32> = ids(&p["output_ids"]).into_iter().filter(|&t| t != special("eos")).collect();
            assert_eq!(got[0], recorded, "{} {}: transformers' tokens", genai.display(), p["name"]);
        }
    }
}

#[test]
fn the_model_builder_layout_serves_requests_with_and_without_the_prefix_cache() {
    init_logs();
    for (genai, optimum) in pairs("fp32") {
        let exp = expected(&optimum);
        for prefix_cache in [true, false] {
            let policy = OnnxPolicy::load(&genai, LoadOptions { prefix_cache, ..LoadOptions::default() }).unwrap();
            for p in exp["prompts"].as_array().unwrap() {
                let limit = exp["generation"]["max_new_tokens"].as_u64().unwrap() as usize;
                let g = policy.generate_blocking(&recorded_request(p, limit), &CancellationToken::new()).unwrap();
                assert_eq!(
                    g.token_ids,
                    recorded_tokens(&exp, p, limit),
                    "{} {} prefix cache {prefix_cache}",
                    genai.display(),
                    p["name"]
                );
            }
        }
    }
}

/// The request of a recorded prompt of `expected.json`, generating at most `limit` tokens.
fn recorded_request(p: &serde_json::Value, limit: usize) -> GenerateRequest {
    let role = match p["role"].as_str() {
        Some("low") => Role::Low,
        Some("progress") => Role::Progress,
        _ => Role::High,
    };
    GenerateRequest {
        max_new_tokens: Some(limit as u32),
        stop: Some(vec![]),
        ..GenerateRequest::new(role, p["prompt"].as_str().unwrap())
    }
}

/// The recorded tokens of prompt `p` (EOS dropped), the first `limit` of them.
fn recorded_tokens(exp: &serde_json::Value, p: &serde_json::Value, limit: usize) -> Vec<u32> {
    let eos = exp["special_tokens"]["eos"].as_u64().unwrap() as u32;
    ids(&p["output_ids"]).into_iter().filter(|&t| t != eos).take(limit).collect()
}

/// Requests that arrive together are decoded together on the builder layout too (right-padded
/// rows in one cache the model writes in place), each getting the tokens it gets alone, with a
/// prefill thread beside the batch and without.
#[test]
fn concurrent_requests_are_batched_on_the_model_builder_layout() {
    init_logs();
    for (genai, optimum) in pairs("fp32") {
        let exp = Arc::new(expected(&optimum));
        let n = exp["generation"]["max_new_tokens"].as_u64().unwrap() as usize;
        for overlap_prefill in [true, false] {
            let batch = BatchOptions { max_batch: 8, max_wait: Duration::from_millis(2), overlap_prefill };
            let policy = OnnxPolicy::load(&genai, LoadOptions { batch, ..LoadOptions::default() }).unwrap();
            // Every prompt three times at once, with different limits so rows leave at different steps.
            let handles: Vec<_> = (0..3)
                .flat_map(|round| exp["prompts"].as_array().unwrap().clone().into_iter().map(move |p| (round, p)))
                .map(|(round, p)| {
                    let (policy, exp, genai) = (policy.clone(), exp.clone(), genai.clone());
                    std::thread::spawn(move || {
                        let limit = n - round * 3;
                        let g =
                            policy.generate_blocking(&recorded_request(&p, limit), &CancellationToken::new()).unwrap();
                        let want = recorded_tokens(&exp, &p, limit);
                        assert_eq!(
                            g.token_ids,
                            want,
                            "{} {} limit {limit} overlap {overlap_prefill}",
                            genai.display(),
                            p["name"]
                        );
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            let max_rows = exp["prompts"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| p["role"].as_str())
                .map(|r| match r {
                    "low" => Role::Low,
                    "progress" => Role::Progress,
                    _ => Role::High,
                })
                .map(|role| policy.stats(role).unwrap().snapshot()[4])
                .max()
                .unwrap_or(0);
            assert!(
                max_rows > 1,
                "{}: requests were never decoded together (overlap {overlap_prefill})",
                genai.display()
            );
        }
    }
}

/// The builder layout's cache is one buffer per layer and kind that every pass writes into: the
/// same memory from the prompt to the last token, until it is full and grows.
#[test]
fn the_model_builder_layouts_cache_is_written_in_place() {
    use stepwire_onnx::kv::{Padding, HEADROOM};
    init_logs();
    let (genai, _) = pairs("fp32").remove(0);
    let mut g = decoder(&genai);
    let prompt: Vec<i64> = (1..20).collect();
    let first = g.forward(&prompt, &vec![1; prompt.len()], &[], g.empty_kv(1).unwrap()).unwrap();
    let mut kv = first.kv;
    assert_eq!((kv.padding, kv.len), (Padding::Right, prompt.len()));
    let cap = kv.cap;
    assert!(cap >= prompt.len() && cap <= prompt.len() + HEADROOM, "cap {cap}");
    let address = |kv: &stepwire_onnx::kv::Kv| kv.tensors[0].try_extract_tensor::<f32>().unwrap().1.as_ptr();
    let buffer = address(&kv);
    for _ in prompt.len()..=cap {
        let len = kv.len;
        kv = g.forward(&[7], &vec![1; len + 1], &[], kv).unwrap().kv;
        assert_eq!(kv.len, len + 1);
        if kv.len <= cap {
            assert_eq!(address(&kv), buffer, "the pass to {} columns moved the cache", kv.len);
        } else {
            assert_ne!(address(&kv), buffer, "a full cache did not grow");
            assert!(kv.cap >= kv.len + HEADROOM);
        }
    }
}

/// The builder's int4 export (fused QKV, int4 embedding and LM head) loads with its quantised LM
/// head recognised and still picks the fp32 model's first token on every recorded prompt, where
/// the fp32 decision is clear.
#[test]
fn the_model_builders_int4_export_loads_and_keeps_clear_first_tokens() {
    init_logs();
    for (genai, optimum) in pairs("int4") {
        let mut g = decoder(&genai);
        assert_eq!(g.spec.layout, Layout::GenaiBuilder);
        assert!(g.last_position_logits, "{}: the quantised LM head was not recognised", genai.display());
        let exp = expected(&optimum);
        let special = |k: &str| exp["special_tokens"][k].as_u64().unwrap() as u32;
        for p in exp["prompts"].as_array().unwrap() {
            let got = greedy_padded(&mut g, &[ids(&p["prompt_ids"])], special("pad"), special("eos"), 1).unwrap();
            let first = ids(&p["output_ids"])[0];
            assert!(got[0].first() == Some(&first) || first == special("eos"), "{} {}", genai.display(), p["name"]);
        }
    }
}

/// A constrained act (the ALFWorld-like cases the benchmarks use) picks the same admissible
/// action on both layouts of the same weights, and a cancelled request is cancelled on both.
#[test]
fn constrained_decoding_and_cancellation_work_on_the_model_builder_layout() {
    use stepwire_onnx::bench_cases::{admissible, low_fields};
    use stepwire_onnx::prompt::Fields;
    init_logs();
    for (genai, optimum) in pairs("fp32") {
        let load = |dir: &PathBuf| OnnxPolicy::load(dir, LoadOptions::default()).unwrap();
        let (g, o) = (load(&genai), load(&optimum));
        for i in 0..4 {
            let fields: Fields<'_> = low_fields(i).into_iter().collect();
            let req = GenerateRequest {
                admissible_actions: Some(admissible(i)),
                ..GenerateRequest::new(Role::Low, o.render(Role::Low, &fields).unwrap())
            };
            let (a, b) = (
                g.generate_blocking(&req, &CancellationToken::new()).unwrap(),
                o.generate_blocking(&req, &CancellationToken::new()).unwrap(),
            );
            assert_eq!(a.finish, b.finish, "{} case {i}", genai.display());
            assert_eq!(a.token_ids, b.token_ids, "{} case {i}", genai.display());
            let cancelled = CancellationToken::new();
            cancelled.cancel();
            let e = g.generate_blocking(&req, &cancelled).unwrap_err();
            assert!(matches!(e, stepwire_onnx::OnnxError::Cancelled), "{e:?}");
        }
    }
}
