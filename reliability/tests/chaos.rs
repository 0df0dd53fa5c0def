//! The chaos driver's short version for CI: 5 bridge faults and 3 runner kills during real
//! `stepwire run` sessions, then the unwritable recordings. The full run is in RELIABILITY.md.

use std::path::Path;

use common::run_harness;

mod common;

#[test]
fn five_bridge_faults_and_three_runner_kills_lose_nothing() {
    let r = run_harness(Path::new(env!("CARGO_BIN_EXE_chaos")), &["--bridge-faults", "5", "--runner-kills", "3"]);

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
}
