//! Shared test helpers: fixture paths and expected.json.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

pub fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

/// The fixture model directories present (tiny-llama always; tiny-qwen2 when built).
pub fn fixtures() -> Vec<PathBuf> {
    ["tiny-llama", "tiny-qwen2"]
        .iter()
        .map(|m| models_dir().join(m))
        .filter(|d| d.join("expected.json").is_file())
        .collect()
}

/// Every bundled model directory with an `expected.json`: the fixtures and the trained policies,
/// so each is checked token for token against `transformers`.
pub fn bundled_policies() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(models_dir())
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    dirs.retain(|d| d.join("expected.json").is_file());
    dirs.sort();
    dirs
}

pub fn expected(dir: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(dir.join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json is JSON")
}

/// The decoder of a policy folder's (first) model.
pub fn policy_decoder(
    dir: &std::path::Path,
    opts: stepwire_onnx::decoder::SessionOptions,
) -> stepwire_onnx::decoder::Decoder {
    let m = stepwire_onnx::manifest::Manifest::load(dir).unwrap();
    stepwire_onnx::decoder::Decoder::load(&m.models[0].onnx, opts).unwrap()
}

pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array().expect("id list").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("warn").try_init();
}
