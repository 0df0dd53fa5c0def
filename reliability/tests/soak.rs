//! The soak's short version for CI: each target for 30 s with 8 sessions, against the real
//! binaries of this build. The full runs and their figures are in RELIABILITY.md.

use std::path::Path;
use std::sync::Mutex;

use common::run_harness;
use serde_json::Value;

mod common;

/// One soak at a time: they share two cores, and each measures its target's resources.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `soak --target <target>` for 30 s and returns its JSON report, failing on any criterion.
fn soak(target: &str) -> Value {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let report = run_harness(
        Path::new(env!("CARGO_BIN_EXE_soak")),
        &["--target", target, "--duration", "30", "--sessions", "8"],
    );
    assert_eq!(report["unexpected"], 0);
    report
}

fn count(report: &Value, kind: &str) -> u64 {
    report["answers"][kind].as_u64().unwrap_or(0)
}

#[test]
fn network_server_30_s() {
    let r = soak("network");
    for kind in ["step", "http_step", "invalid_params", "dropped_mid_request", "oversized_then_closed", "shutdown"] {
        assert!(count(&r, kind) > 0, "no {kind} in {}", r["answers"]);
    }
    assert!(count(&r, "cancelled") + count(&r, "cancel_after_result") > 0, "{}", r["answers"]);
    assert!(r["latencyMs"]["step"]["p99"].as_f64().unwrap() > 0.0);
}

#[test]
fn stdio_server_30_s() {
    let r = soak("stdio");
    for kind in ["step", "invalid_params"] {
        assert!(count(&r, kind) > 0, "no {kind} in {}", r["answers"]);
    }
    assert!(count(&r, "cancelled") + count(&r, "cancel_after_result") > 0, "{}", r["answers"]);
}

#[test]
fn bridge_client_30_s() {
    let r = soak("bridge");
    for kind in ["played_then_shutdown", "dropped_mid_episode", "killed_mid_episode"] {
        assert!(count(&r, kind) > 0, "no {kind} in {}", r["answers"]);
    }
    assert_eq!(r["notes"]["strayBridges"], serde_json::json!([]));
}
