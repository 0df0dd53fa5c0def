//! Finding and loading `libonnxruntime.so`, and the process-wide ONNX Runtime environment.
//!
//! Discovery order: `ORT_DYLIB_PATH`; the repository's `.venv` and `$VIRTUAL_ENV` site-packages
//! (`onnxruntime/capi/libonnxruntime.so*`); then `python3 -c "import onnxruntime"`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use ort::environment::Environment;
use tracing::{debug, info};

use crate::error::{OnnxError, Result};

const FIX: &str = "run scripts/setup.sh (it installs onnxruntime==1.31.1 into .venv), or set \
                   ORT_DYLIB_PATH to a libonnxruntime.so of version 1.31 or newer";

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
    let path = find_library().map_err(OnnxError::Library)?;
    let builder =
        ort::init_from(&path).map_err(|e| OnnxError::Library(format!("cannot load {}: {e}; {FIX}", path.display())))?;
    let env = builder
        .with_name("stepwire")
        .with_telemetry(false)
        .build()
        .map_err(|e| OnnxError::Library(format!("cannot create the environment: {e}")))?;
    info!(library = %path.display(), "ONNX Runtime loaded");
    *guard = Some((env.clone(), path));
    Ok(env)
}

/// The path of the loaded library, once [`environment`] has succeeded.
pub fn library_path() -> Option<PathBuf> {
    let guard = ENV.lock().unwrap_or_else(|p| p.into_inner());
    guard.as_ref().map(|(_, p)| p.clone())
}

/// Where `libonnxruntime.so` is, by the discovery order of this module.
pub fn find_library() -> std::result::Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(format!("ORT_DYLIB_PATH={} is not a file; {FIX}", p.display()));
    }
    let mut tried = Vec::new();
    for venv in venv_candidates() {
        tried.push(venv.display().to_string());
        if let Some(p) = lib_in_venv(&venv) {
            return Ok(p);
        }
    }
    for py in ["python3", "python"] {
        if let Some(dir) = python_package_dir(py) {
            if let Some(p) = lib_in_capi(&dir.join("capi")) {
                return Ok(p);
            }
        }
    }
    Err(format!(
        "libonnxruntime.so not found (looked in ORT_DYLIB_PATH, the virtual environments [{}] \
         and `python3 -c \"import onnxruntime\"`); {FIX}",
        tried.join(", ")
    ))
}

/// `.venv` directories in the current directory and its ancestors, next to the executable and
/// its ancestors, the workspace this crate was built in, and `$VIRTUAL_ENV`.
fn venv_candidates() -> Vec<PathBuf> {
    let mut starts: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            starts.push(dir.to_path_buf());
        }
    }
    starts.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let mut out: Vec<PathBuf> = Vec::new();
    if let Some(v) = std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()) {
        out.push(PathBuf::from(v));
    }
    for start in starts {
        for dir in start.ancestors() {
            let v = dir.join(".venv");
            if v.is_dir() && !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

fn lib_in_venv(venv: &Path) -> Option<PathBuf> {
    for lib in ["lib", "lib64"] {
        let Ok(entries) = std::fs::read_dir(venv.join(lib)) else { continue };
        let mut pythons: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("python")))
            .collect();
        pythons.sort();
        for py in pythons.iter().rev() {
            let capi = py.join("site-packages").join("onnxruntime").join("capi");
            if let Some(p) = lib_in_capi(&capi) {
                return Some(p);
            }
        }
    }
    None
}

fn lib_in_capi(capi: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(capi).ok()?;
    let mut libs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with("libonnxruntime.so") || n == "libonnxruntime.dylib"
            })
        })
        .collect();
    // Prefer the fully versioned file name (`libonnxruntime.so.1.31.1`).
    libs.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    libs.into_iter().next()
}

fn python_package_dir(python: &str) -> Option<PathBuf> {
    let out = Command::new(python)
        .args(["-c", "import onnxruntime,os; print(os.path.dirname(onnxruntime.__file__))"])
        .output()
        .ok()?;
    if !out.status.success() {
        debug!(python, "python cannot import onnxruntime");
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!s.is_empty()).then(|| PathBuf::from(s))
}
