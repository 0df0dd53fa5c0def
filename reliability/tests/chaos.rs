//! The chaos driver's short version for CI: 5 bridge faults and 3 runner kills during real
//! `stepwire run` sessions, then the unwritable recordings. The full run is in RELIABILITY.md.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

#[test]
fn five_bridge_faults_and_three_runner_kills_lose_nothing() {
    let stepwire = stepwire_tests::binary("stepwire-runtime", "stepwire");
    let bridge = stepwire_tests::lockbox_bridge();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args(["--bridge-faults", "5", "--runner-kills", "3", "--json"])
        .arg("--stepwire")
        .arg(&stepwire)
        .arg("--bridge")
        .arg(&bridge)
        .env("STEPWIRE_LOG", "warn")
        .output()
        .expect("chaos runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); status {:?}\n{stderr}", out.status));
    let failed: Vec<&Value> = r["criteria"].as_array().unwrap().iter().filter(|c| c["passed"] != true).collect();
    assert!(failed.is_empty() && out.status.success(), "failed criteria: {failed:#?}\n{stderr}");

    let faults: u64 = r["bridgeFaults"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(faults, 5);
    for fault in ["kill", "stop", "corrupt"] {
        assert!(r["bridgeFaults"][fault].as_u64().unwrap_or(0) > 0, "no {fault} fault: {}", r["bridgeFaults"]);
    }
    assert_eq!(r["runnerKills"], 3);
    assert_eq!(r["episodesLost"], serde_json::json!([]));
    assert_eq!(r["episodesRecordedTwice"], serde_json::json!([]));
    assert_eq!(r["strays"], serde_json::json!([]));
    assert!(r["plannedEpisodes"].as_u64().unwrap() > 0);
    assert_eq!(r["plannedEpisodes"], r["recordedEpisodes"]);
    assert_eq!(r["disk"].as_array().unwrap().len(), 5);
    assert!(started.elapsed() < Duration::from_secs(90), "took {:?}", started.elapsed());
}
