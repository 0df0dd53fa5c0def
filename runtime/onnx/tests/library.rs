//! A missing or broken ONNX Runtime library gives an error saying how to fix it, not a panic.
//! (Its own test binary: it sets ORT_DYLIB_PATH before ONNX Runtime is loaded.)

mod common;

use stepwire_onnx::{LoadOptions, OnnxError, OnnxPolicy};

#[test]
fn missing_and_broken_library_then_recovery() {
    let model = common::models_dir().join("tiny-llama");
    let real = stepwire_onnx::ortlib::find_library().expect("the test setup has onnxruntime").path;

    std::env::set_var("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so");
    let e = OnnxPolicy::load(&model, LoadOptions::default()).err().expect("must fail");
    assert!(matches!(e, OnnxError::Library(_)), "{e}");
    assert!(e.to_string().contains("scripts/setup.sh"), "{e}");

    // A file that is not a shared library.
    std::env::set_var("ORT_DYLIB_PATH", model.join("tokenizer.json"));
    let e = OnnxPolicy::load(&model, LoadOptions::default()).err().expect("must fail");
    assert!(e.to_string().contains("cannot load"), "{e}");

    // Fixing the path lets the next load succeed in the same process.
    std::env::set_var("ORT_DYLIB_PATH", &real);
    OnnxPolicy::load(&model, LoadOptions::default()).expect("loads after the fix");
}
