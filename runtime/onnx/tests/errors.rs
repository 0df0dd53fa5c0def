//! Bad manifests, missing or corrupt model files: clear errors, never panics.

mod common;

use std::path::Path;

use common::{init_logs, models_dir};
use stepwire_onnx::{LoadOptions, OnnxError, OnnxPolicy};

/// A copy of tiny-llama's manifest and tokenizer in a temp dir, with `model.onnx` as given.
fn fixture_dir(manifest: &str, model: Option<&[u8]>) -> tempfile::TempDir {
    let src = models_dir().join("tiny-llama");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stepwire.toml"), manifest).unwrap();
    std::fs::copy(src.join("tokenizer.json"), dir.path().join("tokenizer.json")).unwrap();
    match model {
        Some(bytes) => std::fs::write(dir.path().join("model.onnx"), bytes).unwrap(),
        None => {
            std::fs::copy(src.join("model.onnx"), dir.path().join("model.onnx")).unwrap();
        }
    }
    dir
}

fn good_manifest() -> String {
    std::fs::read_to_string(models_dir().join("tiny-llama/stepwire.toml")).unwrap()
}

fn load_err(dir: &Path) -> String {
    init_logs();
    match OnnxPolicy::load(dir, LoadOptions::default()) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn progress_tracker_is_read_from_the_manifest() {
    use stepwire_onnx::ProgressSource;
    for (extra, want) in [
        ("", ProgressSource::Model),
        ("[progress]\ntracker = \"model\"\n", ProgressSource::Model),
        ("[progress]\ntracker = \"rules\"\n", ProgressSource::Rules),
    ] {
        let dir = fixture_dir(&format!("{}\n{extra}", good_manifest()), None);
        let policy = OnnxPolicy::load(dir.path(), LoadOptions::default()).unwrap();
        assert_eq!(policy.manifest().progress, want, "{extra}");
    }
}

#[test]
fn low_admissible_is_read_from_the_manifest() {
    // A policy that writes its actions freely (`[low] admissible = false`) does not announce
    // constrained decoding, so the runner does not ask the bridge for admissible actions.
    for (manifest, constrained) in
        [(good_manifest(), true), (good_manifest().replace("[low]", "[low]\nadmissible = false"), false)]
    {
        let dir = fixture_dir(&manifest, None);
        let policy = OnnxPolicy::load(dir.path(), LoadOptions::default()).unwrap();
        assert_eq!(policy.manifest().low.admissible, constrained);
        assert_eq!(policy.capabilities().constrained_decoding, constrained);
    }
    let dir = fixture_dir(&good_manifest().replace("[low]", "[low]\nadmissible = \"no\""), None);
    let e = load_err(dir.path());
    assert!(e.contains("admissible"), "{e}");
}

#[test]
fn missing_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("no stepwire.toml"), "{e}");
}

#[test]
fn manifest_errors_name_the_field() {
    let cases: Vec<(String, &str)> = vec![
        ("[model\nonnx=".into(), "invalid manifest"),
        (good_manifest().replace("onnx = \"model.onnx\"\n", ""), "onnx"),
        (good_manifest().replace("roles = [\"high\", \"low\", \"progress\"]", "roles = [\"middle\"]"), "model.roles"),
        (good_manifest().replace("{subtask}", "{subtsk}"), "templates.low: unknown placeholder {subtsk}"),
        (good_manifest().replace("{task}", "{task"), "templates.high"),
        (good_manifest().replace("max_new_tokens = { high = 24", "max_new_tokens = { high = 0"), "max_new_tokens"),
        (good_manifest().replace("eos_token = \"</s>\"", "eos_token = \"<eos>\""), "eos_token"),
        (good_manifest().replace("onnx = \"model.onnx\"", "onnx = \"nope.onnx\""), "model.onnx: model file"),
        (good_manifest().replace("[low]", "[low]\nbogus = 1"), "bogus"),
        (good_manifest() + "\n[roles.low]\nonnx = \"low.onnx\"\n", "roles.low.onnx"),
        (
            good_manifest() + "\n[progress]\ntracker = \"llm\"\n",
            "progress.tracker: \"llm\" is not one of `model`, `rules`, `none`, `history`",
        ),
        (
            good_manifest() + "\n[high]\nplanner = \"oracle\"\n",
            "high.planner: \"oracle\" is not `model` or `whole-task`",
        ),
    ];
    for (text, want) in cases {
        let dir = fixture_dir(&text, None);
        let e = load_err(dir.path());
        assert!(e.contains(want), "expected {want:?} in: {e}");
        assert!(e.contains("stepwire.toml") || e.contains("tokenizer.json"), "names the file: {e}");
    }
}

/// A model whose external data is larger than this machine's memory (a sparse 1 TiB file) is
/// refused before anything is read, with how much it needs and what to do.
#[test]
fn a_model_too_big_for_memory_says_how_much_it_needs() {
    let dir = fixture_dir(&good_manifest(), None);
    std::fs::File::create(dir.path().join("model.onnx_data")).unwrap().set_len(1 << 40).unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("model.onnx") && e.contains("needs about 1280.0 GiB"), "{e}");
    assert!(e.contains("available") && e.contains("stepwire_train quantize"), "{e}");
}

#[test]
fn corrupt_onnx_file() {
    for bytes in [&b"not an onnx model"[..], &[][..]] {
        let dir = fixture_dir(&good_manifest(), Some(bytes));
        let e = load_err(dir.path());
        assert!(e.contains("model.onnx") && e.contains("not a loadable ONNX model"), "{e}");
    }
}

#[test]
fn per_role_model_override_loads() {
    let text = good_manifest() + "\n[roles.low]\nonnx = \"low/model.onnx\"\n";
    let dir = fixture_dir(&text, None);
    std::fs::create_dir(dir.path().join("low")).unwrap();
    std::fs::copy(models_dir().join("tiny-qwen2/model.onnx"), dir.path().join("low/model.onnx")).ok();
    if !dir.path().join("low/model.onnx").is_file() {
        return;
    }
    init_logs();
    let p = OnnxPolicy::load(dir.path(), LoadOptions::default()).unwrap();
    assert_eq!(p.manifest().models.len(), 2);
    assert!(p.cached_prefix_tokens(stepwire_sdk::protocol::Role::Low) > 0);
}

#[test]
fn error_converts_to_policy_error() {
    use stepwire_sdk::policy::PolicyError;
    assert!(matches!(PolicyError::from(OnnxError::Cancelled), PolicyError::Cancelled));
    assert!(matches!(PolicyError::from(OnnxError::InvalidInput("x".into())), PolicyError::InvalidInput(_)));
}

#[test]
fn cuda_request_without_a_gpu_falls_back_to_cpu() {
    init_logs();
    let opts = LoadOptions { device: "cuda:0".parse().unwrap(), ..Default::default() };
    let p = OnnxPolicy::load(models_dir().join("tiny-llama"), opts).unwrap();
    assert!(!p.roles().is_empty());
}
