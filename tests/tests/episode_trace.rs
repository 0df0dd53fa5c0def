//! Normalised episode traces through the example bridges, snapshotted: what a consumer of the
//! recording format sees, with timings and episode ids replaced.

use serde_json::Value;

use stepwire_sdk::client::{python_interpreter, BridgeClient, BridgeCommand, BridgeOptions};
use stepwire_sdk::controller::{play_episode, ActionSource, EpisodeOptions, Policies};
use stepwire_sdk::protocol::{EpisodeKey, EpisodeOutcome, RecordLine, ResetParams};
use stepwire_sdk::rules::{RecentActionsProgress, RuleAgent, WholeTaskPlanner};
use stepwire_tests::{binary, workspace};
use tokio_util::sync::CancellationToken;

async fn play(cmd: BridgeCommand, env: &str, task: &str, expert: bool) -> (Vec<RecordLine>, EpisodeOutcome) {
    play_with(cmd, env, task, expert, EpisodeOptions { max_steps: 30, ..Default::default() }).await
}

async fn play_with(
    cmd: BridgeCommand,
    env: &str,
    task: &str,
    expert: bool,
    options: EpisodeOptions,
) -> (Vec<RecordLine>, EpisodeOutcome) {
    let mut bridge = BridgeClient::spawn(cmd, BridgeOptions::default()).await.expect("bridge starts");
    let agent: RuleAgent = RuleAgent::default();
    let planner = WholeTaskPlanner;
    let progress = RecentActionsProgress::default();
    let policies = if expert {
        Policies { high: &planner, low: ActionSource::EnvironmentExpert, progress: &progress }
    } else {
        Policies { high: &agent, low: ActionSource::Policy(&agent), progress: &agent }
    };
    let reset = ResetParams {
        task: task.into(),
        split: Some("train".into()),
        variation: Some(1),
        seed: Some(5),
        ..Default::default()
    };
    let key = EpisodeKey { env: env.into(), task: task.into(), split: "train".into(), variation: 1, repeat: 0 };
    let mut lines = Vec::new();
    let summary = play_episode(&mut bridge, policies, reset, key, &options, &mut lines, &CancellationToken::new())
        .await
        .expect("episode plays");
    bridge.shutdown().await.expect("bridge shuts down");
    (lines, summary.outcome)
}

/// Every line valid against `schemas/record.line.json`, as JSON values.
fn validated(lines: &[RecordLine]) -> Vec<Value> {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(workspace().join("schemas/record.line.json")).unwrap()).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    lines
        .iter()
        .map(|l| {
            let v = serde_json::to_value(l).unwrap();
            let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{errors:?} in {v}");
            v
        })
        .collect()
}

#[tokio::test]
async fn lockbox_expert_episode_trace() {
    let cmd = BridgeCommand::new(binary("stepwire-example-bridge", "lockbox-bridge")).name("lockbox");
    let (lines, outcome) = play(cmd, "lockbox", "open-box", true).await;
    assert_eq!(outcome, EpisodeOutcome::Won);
    insta::assert_json_snapshot!("lockbox_expert", validated(&lines), {
        "[].envSeconds" => "[seconds]",
        "[].agentSeconds" => "[seconds]",
    });
}

#[tokio::test]
async fn python_example_rule_agent_episode_trace() {
    let cmd = BridgeCommand::new(python_interpreter(Some(&workspace())))
        .arg(workspace().join("examples/python-bridge/bridge.py"))
        .name("garden");
    let tasks = ["water-plant"];
    let (lines, _) = play(cmd, "garden", tasks[0], false).await;
    let last = lines.last().expect("a summary line");
    assert!(matches!(last, RecordLine::Episode(_)));
    insta::assert_json_snapshot!("garden_rules", validated(&lines), {
        "[].envSeconds" => "[seconds]",
        "[].agentSeconds" => "[seconds]",
    });
}

/// A rule agent plays while the expert's advice is recorded beside its transitions: the labels
/// DAgger trains on. Every decision of the learner carries what the expert would have done.
#[tokio::test]
async fn expert_labels_ride_along_with_a_learner() {
    let cmd = BridgeCommand::new(binary("stepwire-example-bridge", "lockbox-bridge")).name("lockbox");
    let options = EpisodeOptions { max_steps: 6, expert_labels: true, ..Default::default() };
    let (lines, _) = play_with(cmd, "lockbox", "find-key", false, options).await;
    let lines = validated(&lines);
    let level = |l: &Value| l["level"].as_str().unwrap_or_default().to_string();
    let transitions: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "transition").collect();
    assert!(transitions.iter().any(|l| level(l) == "progress"));
    for l in transitions {
        match level(l).as_str() {
            "low" | "high" => {
                let advice = &l["_meta"]["expert"];
                assert!(advice["action"].is_string() && advice["subtask"].is_string(), "{l}");
            }
            _ => {
                let tracked = l["_meta"]["expertProgress"].as_str().expect("a tracked progress line");
                let action = l["state"]["action"].as_str().unwrap();
                assert!(!tracked.is_empty() && !action.is_empty(), "{l}");
            }
        }
    }
}
