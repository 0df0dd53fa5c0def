//! `STEPWIRE_ORT_PROFILE`: every session writes ONNX Runtime's per-operator profile when it
//! closes. Its own test binary, as the variable is process-wide.

mod common;

use common::{init_logs, models_dir, policy_decoder};
use stepwire_onnx::decoder::SessionOptions;
use stepwire_onnx::reference::greedy_padded;

#[test]
fn sessions_write_a_profile_with_the_passes_they_ran() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("policy");
    std::env::set_var("STEPWIRE_ORT_PROFILE", &prefix);
    let mut decoder = policy_decoder(&models_dir().join("tiny-llama"), SessionOptions::default());
    let prompt: Vec<u32> = (5..40).collect();
    // A prefill pass, then four decode passes.
    greedy_padded(&mut decoder, &[prompt], 0, u32::MAX, 5).unwrap();
    drop(decoder);
    let written: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(written.len(), 1, "one profile per session: {written:?}");
    let name = written[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("policy_") && name.ends_with(".json"), "{name}");
    let events: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(&written[0]).unwrap()).unwrap();
    let runs = events.iter().filter(|e| e["name"] == "model_run").count();
    assert_eq!(runs, 5, "five model passes were run");
    let matmuls = events.iter().filter(|e| e["cat"] == "Node" && e["args"]["op_name"] == "MatMul").count();
    assert!(matmuls > 0, "no MatMul node in the profile");
}
