//! Running a harness binary as CI does: against this build's `stepwire` and lockbox bridge,
//! with its JSON report parsed and every criterion required to pass.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs `harness` with `args` and returns its JSON report; fails on any failed criterion.
pub fn run_harness(harness: &Path, args: &[&str]) -> Value {
    let stepwire = stepwire_tests::binary("stepwire-runtime", "stepwire");
    let bridge = stepwire_tests::lockbox_bridge();
    let out = Command::new(harness)
        .args(args)
        .arg("--json")
        .arg("--stepwire")
        .arg(&stepwire)
        .arg("--bridge")
        .arg(&bridge)
        .env("STEPWIRE_LOG", "warn")
        .output()
        .expect("the harness runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); status {:?}\n{stderr}", out.status));
    let failed: Vec<&Value> = report["criteria"].as_array().unwrap().iter().filter(|c| c["passed"] != true).collect();
    assert!(failed.is_empty() && out.status.success(), "failed criteria: {failed:#?}\n{stderr}");
    report
}
