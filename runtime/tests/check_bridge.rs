//! `check-bridge` against the real `lockbox-bridge` (must pass) and a broken bridge (must fail).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use stepwire_runtime::check_bridge::{run, CheckBridgeArgs, Status, CHECKS};

/// Builds the example bridge with the same cargo and profile as this test, once.
fn lockbox_bridge() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-q", "-p", "stepwire-example-bridge", "--bin", "lockbox-bridge"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).status().unwrap();
        assert!(status.success(), "building lockbox-bridge failed");
        dir.join("lockbox-bridge")
    })
    .clone()
}

fn args(command: Vec<String>, timeout: u64) -> CheckBridgeArgs {
    CheckBridgeArgs { json: false, timeout, only: vec![], known: None, env: vec![], cwd: None, command }
}

#[tokio::test]
async fn lockbox_bridge_passes_every_check() {
    let bin = lockbox_bridge().to_string_lossy().into_owned();
    let report = run(&args(vec![bin], 30)).await.unwrap();
    println!("{}", report.table());
    assert_eq!(report.checks.len(), CHECKS.len());
    assert!(report.passed, "{}", report.table());
    assert!(report.checks.iter().all(|c| c.status == Status::Pass), "{}", report.table());
}

#[tokio::test]
async fn broken_bridge_fails_with_reasons() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/broken_bridge.py");
    let report = run(&args(vec!["python3".into(), script.into()], 5)).await.unwrap();
    println!("{}", report.table());
    assert!(!report.passed);
    assert_ne!(report.exit_code(), std::process::ExitCode::SUCCESS);
    let failed = |name: &str| report.checks.iter().any(|c| c.name == name && c.status == Status::Fail);
    for name in
        ["initialize-required", "version-mismatch", "tasks", "unknown-method", "malformed-frame", "shutdown-exit"]
    {
        assert!(failed(name), "`{name}` should fail:\n{}", report.table());
    }
}
