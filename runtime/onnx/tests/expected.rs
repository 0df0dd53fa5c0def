//! Greedy output equals `transformers` token for token (models/*/expected.json), through the
//! plain loop, the engine (prefix cache on and off) and concurrent batched requests.

mod common;

use std::sync::Arc;

use common::{bundled_policies, expected, fixtures, ids, init_logs};
use stepwire_onnx::decoder::{Decoder, SessionOptions};
use stepwire_onnx::manifest::Manifest;
use stepwire_onnx::reference::greedy_padded;
use stepwire_onnx::tokenize::TextTokenizer;
use stepwire_onnx::{BatchOptions, GenerateRequest, LoadOptions, OnnxPolicy};
use stepwire_sdk::protocol::Role;
use stepwire_sdk::protocol::Sampling;
use tokio_util::sync::CancellationToken;

fn role_of(p: &serde_json::Value) -> Role {
    match p["role"].as_str() {
        Some("low") => Role::Low,
        Some("progress") => Role::Progress,
        _ => Role::High,
    }
}

fn want(p: &serde_json::Value, eos: u32, pad: u32) -> Vec<u32> {
    ids(p).into_iter().filter(|&t| t != eos && t != pad).collect()
}

#[test]
fn plain_loop_matches_expected_including_padded_batches() {
    init_logs();
    for dir in bundled_policies() {
        let exp = expected(&dir);
        let m = Manifest::load(&dir).unwrap();
        let tok = TextTokenizer::load(&m.models[0]).unwrap();
        let mut dec = Decoder::load(&m.models[0].onnx, SessionOptions::default()).unwrap();
        // The Optimum export's LM head is recognised, so these checks cover the rewritten graph.
        assert!(dec.last_position_logits, "{}: logits were not rewritten", dir.display());
        let n = exp["generation"]["max_new_tokens"].as_u64().unwrap() as usize;
        for p in exp["prompts"].as_array().unwrap() {
            let got_ids = tok.encode_prompt(p["prompt"].as_str().unwrap()).unwrap();
            assert_eq!(got_ids, ids(&p["prompt_ids"]), "{}: prompt ids", p["name"]);
            let out = greedy_padded(&mut dec, &[got_ids], tok.pad, tok.eos, n).unwrap();
            assert_eq!(out[0], want(&p["output_ids"], tok.eos, tok.pad), "{} {}", dir.display(), p["name"]);
        }
        for b in exp["batches"].as_array().unwrap() {
            let rows: Vec<Vec<u32>> = b["input_ids"]
                .as_array()
                .unwrap()
                .iter()
                .zip(b["attention_mask"].as_array().unwrap())
                .map(|(r, m)| ids(r).into_iter().zip(ids(m)).filter(|(_, m)| *m == 1).map(|(t, _)| t).collect())
                .collect();
            let out = greedy_padded(&mut dec, &rows, tok.pad, tok.eos, n).unwrap();
            for (i, o) in out.iter().enumerate() {
                assert_eq!(*o, want(&b["output_ids"][i], tok.eos, tok.pad), "{} row {i}", b["name"]);
            }
        }
    }
}

/// The expected tokens are `transformers`' greedy ones: ask for greedy decoding explicitly, since
/// a policy's manifest may make it sample by default.
fn request(p: &serde_json::Value, n: u32) -> GenerateRequest {
    GenerateRequest {
        max_new_tokens: Some(n),
        stop: Some(vec![]),
        sampling: Some(Sampling { temperature: Some(0.0), ..Default::default() }),
        ..GenerateRequest::new(role_of(p), p["prompt"].as_str().unwrap())
    }
}

fn check_policy(policy: &Arc<OnnxPolicy>, exp: &serde_json::Value, expect_cache: bool) {
    let n = exp["generation"]["max_new_tokens"].as_u64().unwrap() as u32;
    let cancel = CancellationToken::new();
    for p in exp["prompts"].as_array().unwrap() {
        let g = policy.generate_blocking(&request(p, n), &cancel).unwrap();
        assert_eq!(g.token_ids, want(&p["output_ids"], 2, 3), "{}", p["name"]);
        assert_eq!(g.text, p["output_text"].as_str().unwrap(), "{} text", p["name"]);
        let prefix = p["prefix_len"].as_u64().unwrap_or(0) as usize;
        if expect_cache && p["role"].is_string() {
            assert_eq!(g.cached_tokens, prefix, "{} cached", p["name"]);
        } else {
            assert_eq!(g.cached_tokens, 0);
        }
        assert_eq!(g.prompt_tokens, ids(&p["prompt_ids"]).len());
    }
}

#[test]
fn engine_matches_expected_with_and_without_prefix_cache() {
    init_logs();
    for dir in bundled_policies() {
        let exp = expected(&dir);
        for cache in [true, false] {
            let opts = LoadOptions { prefix_cache: cache, ..Default::default() };
            let policy = OnnxPolicy::load(&dir, opts).unwrap();
            check_policy(&policy, &exp, cache);
        }
    }
}

/// Both ways of serving a batch: a prefill thread with its own session next to the decode
/// thread, and one session taking turns.
#[test]
fn concurrent_batched_requests_match_expected() {
    init_logs();
    for dir in fixtures() {
        for overlap_prefill in [true, false] {
            let exp = Arc::new(expected(&dir));
            let batch = BatchOptions { max_batch: 8, max_wait: std::time::Duration::from_millis(2), overlap_prefill };
            let policy = OnnxPolicy::load(&dir, LoadOptions { batch, ..Default::default() }).unwrap();
            let n = exp["generation"]["max_new_tokens"].as_u64().unwrap() as u32;
            let prompts = exp["prompts"].as_array().unwrap().clone();
            // Several rounds of every prompt at once, with different limits so rows leave the
            // batch at different steps.
            let handles: Vec<_> = (0..3)
                .flat_map(|round| prompts.iter().cloned().map(move |p| (round, p)))
                .map(|(round, p)| {
                    let policy = policy.clone();
                    std::thread::spawn(move || {
                        let limit = n - (round * 3) as u32;
                        let g = policy.generate_blocking(&request(&p, limit), &CancellationToken::new()).unwrap();
                        let mut w = want(&p["output_ids"], 2, 3);
                        w.truncate(limit as usize);
                        assert_eq!(g.token_ids, w, "{} (limit {limit}, overlap {overlap_prefill})", p["name"]);
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            let [prefills, _, _, _, max_rows, _, _, _] = policy.stats(Role::High).unwrap().snapshot();
            assert!(max_rows > 1, "requests were never decoded together (overlap {overlap_prefill})");
            assert!(prefills > 0);
        }
    }
}

/// A model whose weights are in a separate `model.onnx_data` file (as Optimum writes models over
/// 2 GB) loads from another directory and gives the same tokens.
#[test]
fn model_with_external_data_matches_expected() {
    use onnx_protobuf::tensor_proto::DataLocation;
    use onnx_protobuf::{Message, ModelProto, StringStringEntryProto};

    init_logs();
    let src = &fixtures()[0];
    let dir = tempfile::tempdir().unwrap();
    for f in ["tokenizer.json", "stepwire.toml"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let mut model = ModelProto::parse_from_bytes(&std::fs::read(src.join("model.onnx")).unwrap()).unwrap();
    let mut data = Vec::new();
    for t in model.graph.as_mut().unwrap().initializer.iter_mut().filter(|t| !t.raw_data.is_empty()) {
        let entry = |k: &str, v: String| {
            let mut e = StringStringEntryProto::new();
            e.key = k.into();
            e.value = v;
            e
        };
        t.external_data = vec![
            entry("location", "model.onnx_data".into()),
            entry("offset", data.len().to_string()),
            entry("length", t.raw_data.len().to_string()),
        ];
        data.append(&mut t.raw_data);
        t.data_location = DataLocation::EXTERNAL.into();
    }
    assert!(!data.is_empty());
    std::fs::write(dir.path().join("model.onnx_data"), data).unwrap();
    std::fs::write(dir.path().join("model.onnx"), model.write_to_bytes().unwrap()).unwrap();

    let policy = OnnxPolicy::load(dir.path(), LoadOptions::default()).unwrap();
    check_policy(&policy, &expected(src), true);
}
