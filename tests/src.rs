//! Helpers shared by the cross-crate tests: finding (and if need be building) the workspace's
//! binaries, so `cargo test` works on a clean checkout without a separate build step.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `target/<profile>/<bin>` of the running test's build, built with cargo when absent.
pub fn binary(package: &str, bin: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>
    let dir = exe.parent().and_then(|p| p.parent()).expect("test binaries live in target/<profile>/deps");
    let path = dir.join(bin);
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-q", "-p", package, "--bin", bin]).current_dir(workspace());
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("cargo runs");
    assert!(status.success(), "building {bin} failed");
    assert!(path.is_file(), "{} missing after build", path.display());
    path
}

/// The example `lockbox-bridge`, built once per test binary.
pub fn lockbox_bridge() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| binary("stepwire-example-bridge", "lockbox-bridge")).clone()
}
