//! The limits on one request, against the attacks that found them missing: a 16 kB observation
//! (gigabytes of attention memory), a 10 kB admissible action (10,001 forced tokens) and an
//! uncapped `maxTokens`. Each must be refused before the model runs, as a limit error.

mod common;

use std::time::{Duration, Instant};

use common::{init_logs, models_dir};
use stepwire_onnx::{Limits, LoadOptions, OnnxPolicy};
use stepwire_sdk::policy::{LowLevelPolicy, PolicyError};
use stepwire_sdk::protocol::{ActParams, ErrorCode, Observation, RpcError, Sampling};
use tokio_util::sync::CancellationToken;

fn policy(limits: Limits) -> std::sync::Arc<OnnxPolicy> {
    init_logs();
    OnnxPolicy::load(models_dir().join("tiny-llama"), LoadOptions { limits, ..LoadOptions::default() }).unwrap()
}

fn act(obs: String, actions: Option<Vec<String>>, max_tokens: Option<u32>) -> ActParams {
    ActParams {
        subtask: "take the apple".into(),
        progress: "none".into(),
        observation: Observation::text(obs),
        admissible_actions: actions,
        sampling: max_tokens.map(|n| Sampling { max_tokens: Some(n), ..Default::default() }),
        meta: Default::default(),
    }
}

async fn refused(policy: &OnnxPolicy, params: ActParams) -> String {
    let started = Instant::now();
    let e = policy.act(&params, &CancellationToken::new()).await.unwrap_err();
    // Refused up front, not after decoding: well under what one forced 10k-token decode takes.
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(matches!(e, PolicyError::LimitExceeded(_)), "expected a limit error, got {e:?}");
    let wire = RpcError::from(e);
    assert_eq!(wire.code, ErrorCode::LIMIT_EXCEEDED, "{wire}");
    wire.message
}

#[tokio::test]
async fn a_16_kb_observation_is_refused_by_the_context_window() {
    let policy = policy(Limits::default());
    let message = refused(&policy, act("apple ".repeat(16 * 1024 / 6), None, None)).await;
    assert!(message.contains("prompt") && message.contains("--max-prompt-tokens"), "{message}");
    // A prompt that fits is still served.
    policy.act(&act("You see an apple.".into(), None, None), &CancellationToken::new()).await.unwrap();
}

#[tokio::test]
async fn max_prompt_tokens_lowers_the_limit() {
    let policy = policy(Limits { max_prompt_tokens: Some(40), ..Limits::default() });
    let message = refused(&policy, act("a fridge, a drawer and a cabinet ".repeat(8), None, None)).await;
    assert!(message.contains("limit of 40"), "{message}");
}

#[tokio::test]
async fn a_10_kb_admissible_action_is_refused() {
    let policy = policy(Limits::default());
    let long = "x".repeat(10 * 1024);
    let message = refused(&policy, act("You see a door.".into(), Some(vec!["open door".into(), long]), None)).await;
    assert!(message.contains("--max-new-tokens") && message.contains("10240 bytes"), "{message}");
}

#[tokio::test]
async fn max_tokens_over_the_cap_is_refused_and_within_it_served() {
    let policy = policy(Limits { max_prompt_tokens: None, max_new_tokens: 32 });
    let message = refused(&policy, act("You see a door.".into(), None, Some(1_000_000))).await;
    assert!(message.contains("maxTokens 1000000"), "{message}");
    let ok = policy.act(&act("You see a door.".into(), None, Some(32)), &CancellationToken::new()).await;
    assert!(ok.is_ok(), "{ok:?}");
}

#[tokio::test]
async fn a_plan_over_the_window_leaves_out_the_oldest_completed_subtasks() {
    use stepwire_sdk::policy::HighLevelPolicy;
    use stepwire_sdk::protocol::PlanParams;
    let policy = policy(Limits { max_prompt_tokens: Some(400), ..Limits::default() });
    let plan = |completed: Vec<String>, observation: &str| PlanParams {
        task: "put a mug in the drawer".into(),
        completed_subtasks: completed,
        last_progress: String::new(),
        observation: Observation::text(observation),
        sampling: Some(Sampling { max_tokens: Some(4), ..Sampling::default() }),
        meta: None,
    };
    // A long episode's done list no longer fits: the plan is still made.
    let done: Vec<String> = (0..40).map(|i| format!("go to the drawer {i} and look inside")).collect();
    let r = policy.plan(&plan(done, "You see a mug."), &CancellationToken::new()).await;
    assert!(r.is_ok(), "{r:?}");
    // An observation that alone is over the window is still refused.
    let r = policy.plan(&plan(vec!["go to the desk".into()], &"a mug ".repeat(400)), &CancellationToken::new()).await;
    match r {
        Err(PolicyError::LimitExceeded(m)) => assert!(m.contains("limit of 400"), "{m}"),
        other => panic!("expected a limit error, got {other:?}"),
    }
}
