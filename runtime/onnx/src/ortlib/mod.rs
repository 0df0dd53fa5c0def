//! Loading `libonnxruntime.so` (found by [`search`]), and the process-wide ONNX Runtime
//! environment.

pub mod search;

use std::path::PathBuf;
use std::sync::Mutex;

use ort::environment::Environment;
use tracing::{debug, info};

use crate::error::{OnnxError, Result};
use search::FIX;
pub use search::{Found, SearchInputs, Source};

static ENV: Mutex<Option<(Environment, PathBuf)>> = Mutex::new(None);

/// The process-wide ONNX Runtime environment, loading the library on first use. A failure is
/// not remembered: after fixing the installation, the next call tries again.
///
/// Other crates that create ONNX Runtime sessions should use this environment: ONNX Runtime allows
/// one per process.
pub fn environment() -> Result<Environment> {
    let mut guard = ENV.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((env, _)) = guard.as_ref() {
        return Ok(env.clone());
    }
    let Found { path, source } = find_library().map_err(OnnxError::Library)?;
    // Said before loading: a library that crashes the process is named first.
    info!(library = %path.display(), chosen_by = %source, "loading ONNX Runtime");
    let builder = ort::init_from(&path)
        .map_err(|e| OnnxError::Library(format!("cannot load {} (chosen by {source}): {e}; {FIX}", path.display())))?;
    let env = builder
        .with_name("stepwire")
        .with_telemetry(false)
        .build()
        .map_err(|e| OnnxError::Library(format!("cannot create the environment: {e}")))?;
    debug!(library = %path.display(), "ONNX Runtime loaded");
    *guard = Some((env.clone(), path));
    Ok(env)
}

/// The path of the loaded library, once [`environment`] has succeeded.
pub fn library_path() -> Option<PathBuf> {
    let guard = ENV.lock().unwrap_or_else(|p| p.into_inner());
    guard.as_ref().map(|(_, p)| p.clone())
}

/// Where `libonnxruntime.so` is and why (see [`search`] for the order: never the working
/// directory).
pub fn find_library() -> std::result::Result<Found, String> {
    search::search(&SearchInputs::from_process())
}
