//! The ONNX Runtime library is never taken from the working directory or its parents: a file
//! planted in `/tmp/.venv` must not run inside a stepwire started below `/tmp`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const STEPWIRE: &str = env!("CARGO_BIN_EXE_stepwire");

fn tiny_llama() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("models/tiny-llama")
}

/// A garbage file named like the real library in `<dir>/.venv`.
fn plant(dir: &Path) -> PathBuf {
    let capi = dir.join(".venv/lib/python3.11/site-packages/onnxruntime/capi");
    std::fs::create_dir_all(&capi).unwrap();
    let lib = capi.join("libonnxruntime.so.1.31.1");
    std::fs::write(&lib, b"planted: not a shared library").unwrap();
    lib
}

/// `stepwire serve --stdio` loads the model at start, then ends at the end of its input.
fn serve_from(cwd: &Path, ort_dylib_path: Option<&Path>) -> Output {
    let mut cmd = Command::new(STEPWIRE);
    cmd.args(["serve", "--stdio", "--policy"])
        .arg(tiny_llama())
        .current_dir(cwd)
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("VIRTUAL_ENV")
        .env("STEPWIRE_LOG", "info")
        .stdin(Stdio::null());
    if let Some(p) = ort_dylib_path {
        cmd.env("ORT_DYLIB_PATH", p);
    }
    cmd.output().expect("running stepwire")
}

#[test]
fn a_library_planted_above_the_working_directory_is_not_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let planted = plant(tmp.path());
    plant(&tmp.path().join("a"));
    let cwd = tmp.path().join("a/b");
    std::fs::create_dir_all(&cwd).unwrap();

    let out = serve_from(&cwd, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(&tmp.path().display().to_string()), "a planted library was considered:\n{stderr}");
    // (Its input is empty: the server ends at once, with code 1 as no `shutdown` came.)
    if stderr.contains("ONNX policy loaded") {
        // This checkout has its own .venv: that is the one loaded, and the log says why.
        assert!(stderr.contains("chosen_by") && stderr.contains(".venv"), "{stderr}");
    } else {
        // No library the user chose: the error says what to set.
        assert!(stderr.contains("ORT_DYLIB_PATH") && stderr.contains("never searched"), "{stderr}");
    }

    // Named explicitly, the same file is what the user chose: it is tried, and refused as broken.
    let out = serve_from(&cwd, Some(&planted));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("cannot load") && stderr.contains("chosen by ORT_DYLIB_PATH"), "{stderr}");
}
