//! What a cluster driver uses of `stepwire run` (real binary, real `lockbox-bridge`):
//! `--print-plan` lists the plan a run would play, `--only-episodes` plays part of it, and
//! `--report-from` reports a recording filled piece by piece exactly as a local run would.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const STEPWIRE: &str = env!("CARGO_BIN_EXE_stepwire");
const PLAN: [&str; 8] = ["--env", "lockbox", "--episodes", "8", "--seed", "3", "--repeat", "2"];

fn stepwire(dir: &Path, args: &[&str]) -> Output {
    Command::new(STEPWIRE)
        .arg("run")
        .args(PLAN)
        .args(args)
        .current_dir(dir)
        .env("STEPWIRE_LOG", "warn")
        .output()
        .expect("running stepwire")
}

fn json_of(out: &Output) -> Value {
    assert!(out.status.success(), "stepwire failed: {:?}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn ids(listing: &Value) -> Vec<String> {
    listing["episodes"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_plan_played_in_parts_reports_as_one_local_run() {
    stepwire_tests::lockbox_bridge();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let local = json_of(&stepwire(d, &["--record", "local.jsonl", "--json", "-q"]));

    // The plan, as the local run played it; the recording is created empty.
    let listing = json_of(&stepwire(d, &["--record", "merged.jsonl", "--print-plan"]));
    let plan = ids(&listing);
    assert_eq!(listing["planned"], 16);
    assert_eq!(listing["alreadyRecorded"], 0);
    let local_ids: Vec<&str> =
        local["episodeResults"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(plan, local_ids);
    assert!(listing["episodes"][0]["seed"].as_u64().is_some());
    assert_eq!(std::fs::metadata(d.join("merged.jsonl")).unwrap().len(), 0);

    // Two workers' shares, each into its own file, appended to the driver's recording.
    let (a, b) = plan.split_at(5);
    for (name, share) in [("a", a), ("b", b)] {
        std::fs::write(d.join(format!("{name}.ids")), share.join("\n")).unwrap();
        let out = json_of(&stepwire(
            d,
            &["--only-episodes", &format!("{name}.ids"), "--record", &format!("{name}.jsonl"), "--json", "-q"],
        ));
        assert_eq!(out["planned"], share.len());
        assert_eq!(out["episodes"], share.len());
        let text = std::fs::read_to_string(d.join(format!("{name}.jsonl"))).unwrap();
        let mut merged = std::fs::OpenOptions::new().append(true).open(d.join("merged.jsonl")).unwrap();
        std::io::Write::write_all(&mut merged, text.as_bytes()).unwrap();
    }

    // After the first share only, the listing says which episodes are recorded.
    let listing = json_of(&stepwire(d, &["--record", "merged.jsonl", "--resume", "--print-plan"]));
    assert_eq!(listing["alreadyRecorded"], 16);

    std::fs::write(d.join("report.json"), format!(r#"{{"played": {:?}, "wallSeconds": 2.5}}"#, &plan[2..])).unwrap();
    let report = json_of(&stepwire(
        d,
        &["--record", "merged.jsonl", "--resume", "--report-from", "report.json", "--json", "-q", "--min-success", "1"],
    ));
    for key in ["planned", "episodes", "won", "successRate", "meanSteps", "notRun"] {
        assert_eq!(report[key], local[key], "{key}");
    }
    let per_task = |s: &Value| -> Vec<(Value, Value, Value)> {
        s["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["task"].clone(), t["episodes"].clone(), t["won"].clone()))
            .collect()
    };
    assert_eq!(per_task(&report), per_task(&local));
    assert_eq!(report["resumed"], 2, "episodes not played in this run count as resumed");
    assert_eq!(report["wallSeconds"], 2.5);
    let shape = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(shape(&report), shape(&local));
}

#[test]
fn missing_episodes_and_strangers_are_errors() {
    stepwire_tests::lockbox_bridge();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("ids"), "lockbox/nope/train/0#0\n").unwrap();
    let out = stepwire(d, &["--only-episodes", "ids", "--no-record"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not in this run's plan"));

    // A report of a recording that lacks planned episodes: not run, exit status 1, as locally.
    std::fs::write(d.join("empty.jsonl"), "").unwrap();
    std::fs::write(d.join("report.json"), r#"{"played": [], "wallSeconds": 1}"#).unwrap();
    let out = stepwire(d, &["--record", "empty.jsonl", "--resume", "--report-from", "report.json", "--json", "-q"]);
    assert_eq!(out.status.code(), Some(1));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["notRun"], 16);
    assert_eq!(std::fs::metadata(d.join("empty.jsonl")).unwrap().len(), 0, "a report plays nothing");
    // --report-from needs --resume.
    let out = stepwire(d, &["--record", "empty.jsonl", "--report-from", "report.json"]);
    assert_eq!(out.status.code(), Some(2));
}
