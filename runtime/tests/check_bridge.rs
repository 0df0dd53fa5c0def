//! `check-bridge` against the real `lockbox-bridge` (must pass) and a broken bridge (must fail).

use stepwire_runtime::check_bridge::{run, CheckBridgeArgs, Status, CHECKS};
use stepwire_tests::lockbox_bridge;

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

fn fixture(name: &str, args: &[&str]) -> Vec<String> {
    let script = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    [vec!["python3".to_string(), script], args.iter().map(|a| a.to_string()).collect()].concat()
}

#[tokio::test]
async fn a_bridge_answering_garbage_gets_its_verdict_in_seconds() {
    // Under one call timeout in all: no check waited for an answer from a bridge whose output
    // had already broken the protocol (uncontended it takes about 6 s; it used to take 6 min).
    let timeout_s = 30;
    let started = std::time::Instant::now();
    let report = run(&args(fixture("broken_bridge.py", &["garbage"]), timeout_s)).await.unwrap();
    assert!(started.elapsed().as_secs() < timeout_s, "{:?}", started.elapsed());
    assert!(!report.passed);
    let init = report.checks.iter().find(|c| c.name == "initialize").unwrap();
    assert!(init.reason.contains("not JSON-RPC"), "{}", report.table());
    let after: Vec<_> = report.checks.iter().skip_while(|c| c.name != "initialize").skip(1).collect();
    assert!(!after.is_empty() && after.iter().all(|c| c.status == Status::Skip), "{}", report.table());
}

#[tokio::test]
async fn a_bridge_that_dies_shows_its_traceback_and_the_stray_print() {
    let report = run(&args(fixture("import_error_bridge.py", &[]), 30)).await.unwrap();
    let init = report.checks.iter().find(|c| c.name == "initialize").unwrap();
    assert_eq!(init.status, Status::Fail);
    for expected in ["exit status: 1", "ImportError: no module named 'scienceworld'", "guard_stdio()"] {
        assert!(init.reason.contains(expected), "missing {expected:?} in: {}", init.reason);
    }
}

#[tokio::test]
async fn advice_the_bridge_then_refuses_fails_the_check() {
    let mut a = args(fixture("bad_advice_bridge.py", &[]), 30);
    a.only = vec!["advice-accepted".into()];
    let report = run(&a).await.unwrap();
    let check = report.checks.iter().find(|c| c.name == "advice-accepted").unwrap();
    assert_eq!(check.status, Status::Fail, "{}", report.table());
    assert!(check.reason.contains("fly away") && check.reason.contains("-31001"), "{}", report.table());
}
