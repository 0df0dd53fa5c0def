//! Turning a `--policy` argument into loaded policies: `rules` (no model) or a model directory
//! with a `stepwire.toml` manifest (ONNX). `expert` is the runner's business, since the expert
//! lives in the environment.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use stepwire_onnx::{PlannerSource, ProgressSource};
use stepwire_sdk::policy::{Agent, HighLevelPolicy, LowLevelPolicy, PolicyError, ProgressPolicy};
use stepwire_sdk::protocol::{
    ActParams, ActResult, AgentCapabilities, PlanParams, PlanResult, ProgressUpdateParams, ProgressUpdateResult, Role,
};
use stepwire_sdk::rules::{
    FirstAdmissibleActor, HistoryProgress, NoProgress, ProgressTracker, RandomAdmissibleActor, RuleAgent,
    WholeTaskPlanner,
};
use tokio_util::sync::CancellationToken;

/// Where inference runs: `cpu`, `cuda` or `cuda:N`. CUDA needs a build with `--features cuda`;
/// without it, or without a GPU, stepwire logs one line and runs on CPU.
pub use stepwire_onnx::Device;

/// How model policies run; the same flags on `stepwire run` and `stepwire serve`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ModelOptions {
    /// `cpu`, `cuda` or `cuda:N`. CUDA needs a build with `--features cuda`; without it, or
    /// without a GPU, stepwire logs one warning and runs on CPU.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// One ONNX Runtime session per model instead of two: half the weight memory, but new
    /// requests are no longer prefilled on a second core while a batch decodes.
    #[arg(long)]
    pub one_session: bool,
    /// Load model graphs exactly as exported, without stepwire's load-time rewrites
    /// (last-position logits, shape folding): slower, for ruling the rewrites out.
    #[arg(long)]
    pub keep_graph: bool,
    /// Write local progress with the deterministic rules tracker (what expert demonstrations are
    /// labelled with) instead of the model's progress role; a manifest asks for the same with
    /// `[progress] tracker = "rules"`.
    #[arg(long)]
    pub progress_rules: bool,
    /// Longest prompt a role serves, in tokens; longer requests get error -31012. Default: the
    /// model's context window (its config.json) less the role's generation.
    #[arg(long, value_name = "TOKENS")]
    pub max_prompt_tokens: Option<usize>,
    /// Most tokens one request may generate: the cap on `maxTokens`, on a manifest's
    /// max_new_tokens and on the longest admissible action of a constrained decode (-31012 over it).
    #[arg(long, value_name = "TOKENS", default_value_t = stepwire_onnx::limits::DEFAULT_MAX_NEW_TOKENS)]
    pub max_new_tokens: usize,
}

impl Default for ModelOptions {
    fn default() -> Self {
        let limits = stepwire_onnx::Limits::default();
        ModelOptions {
            device: Device::default(),
            one_session: false,
            keep_graph: false,
            progress_rules: false,
            max_prompt_tokens: limits.max_prompt_tokens,
            max_new_tokens: limits.max_new_tokens,
        }
    }
}

/// A loaded agent and what it announces.
pub struct LoadedAgent {
    pub agent: Arc<dyn Agent>,
    pub capabilities: AgentCapabilities,
}

/// Loads `rules`, `random` or a model directory.
pub fn load(spec: &str, options: ModelOptions) -> anyhow::Result<LoadedAgent> {
    let rules = |agent: Arc<dyn Agent>| LoadedAgent {
        agent,
        capabilities: AgentCapabilities {
            roles: Role::ALL.to_vec(),
            constrained_decoding: true,
            policy: Some(spec.into()),
        },
    };
    match spec {
        "rules" => return Ok(rules(Arc::new(RuleAgent::<FirstAdmissibleActor>::default()))),
        "random" => return Ok(rules(Arc::new(RuleAgent::<RandomAdmissibleActor>::default()))),
        _ => {}
    }
    let dir = Path::new(spec);
    if !dir.join("stepwire.toml").is_file() {
        anyhow::bail!(
            "--policy {spec}: expected `rules`, `random`, `expert` (runner only) or a model directory with a stepwire.toml manifest"
        );
    }
    load_onnx(dir, options)
}

fn load_onnx(dir: &Path, options: ModelOptions) -> anyhow::Result<LoadedAgent> {
    let defaults = stepwire_onnx::LoadOptions::default();
    let batch = stepwire_onnx::BatchOptions { overlap_prefill: !options.one_session, ..defaults.batch };
    let limits =
        stepwire_onnx::Limits { max_prompt_tokens: options.max_prompt_tokens, max_new_tokens: options.max_new_tokens };
    let load = stepwire_onnx::LoadOptions {
        device: options.device,
        keep_graph: options.keep_graph,
        batch,
        limits,
        ..defaults
    };
    let policy = stepwire_onnx::OnnxPolicy::load(dir, load)?;
    let mut capabilities = policy.capabilities();
    let source = if options.progress_rules { ProgressSource::Rules } else { policy.manifest().progress };
    let progress: Option<Box<dyn ProgressPolicy>> = match source {
        ProgressSource::Model => None,
        ProgressSource::Rules => Some(Box::new(ProgressTracker::default())),
        ProgressSource::None => Some(Box::new(NoProgress)),
        ProgressSource::History => Some(Box::new(HistoryProgress)),
    };
    let planner = match policy.manifest().planner {
        PlannerSource::Model => None,
        PlannerSource::WholeTask => Some(WholeTaskPlanner),
    };
    let agent: Arc<dyn Agent> = if progress.is_none() && planner.is_none() {
        policy
    } else {
        tracing::info!(policy = %dir.display(), progress = ?source, planner = ?policy.manifest().planner,
            "roles written by rules, not the model");
        for (role, by_rules) in [(Role::High, planner.is_some()), (Role::Progress, progress.is_some())] {
            if by_rules && !capabilities.roles.contains(&role) {
                capabilities.roles.push(role);
            }
        }
        Arc::new(ModelWithRules { model: policy, planner, progress })
    };
    tracing::info!(policy = %dir.display(), roles = ?capabilities.roles, "policy loaded");
    Ok(LoadedAgent { agent, capabilities })
}

/// A model's roles, with the planner or the progress writer replaced by a deterministic one
/// where the manifest (or `--progress-rules`) says so.
struct ModelWithRules {
    model: Arc<stepwire_onnx::OnnxPolicy>,
    planner: Option<WholeTaskPlanner>,
    progress: Option<Box<dyn ProgressPolicy>>,
}

#[async_trait]
impl HighLevelPolicy for ModelWithRules {
    async fn plan(&self, p: &PlanParams, c: &CancellationToken) -> Result<PlanResult, PolicyError> {
        match &self.planner {
            Some(rules) => rules.plan(p, c).await,
            None => self.model.plan(p, c).await,
        }
    }
}

#[async_trait]
impl LowLevelPolicy for ModelWithRules {
    async fn act(&self, p: &ActParams, c: &CancellationToken) -> Result<ActResult, PolicyError> {
        self.model.act(p, c).await
    }
}

#[async_trait]
impl ProgressPolicy for ModelWithRules {
    async fn update(
        &self,
        p: &ProgressUpdateParams,
        c: &CancellationToken,
    ) -> Result<ProgressUpdateResult, PolicyError> {
        match &self.progress {
            Some(rules) => rules.update(p, c).await,
            None => self.model.update(p, c).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use stepwire_sdk::protocol::Observation;

    use super::*;

    fn tiny_llama() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tiny-llama")
    }

    /// A copy of the tiny-llama policy whose manifest `edit` rewrote.
    fn tiny_llama_with(edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
        let src = tiny_llama();
        let dir = tempfile::tempdir().unwrap();
        for f in ["model.onnx", "tokenizer.json"] {
            std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
        }
        let manifest = std::fs::read_to_string(src.join("stepwire.toml")).unwrap();
        std::fs::write(dir.path().join("stepwire.toml"), edit(manifest)).unwrap();
        dir
    }

    /// `[progress] tracker = "rules"` in the manifest, or `--progress-rules`: the model plans and
    /// acts, the rules tracker writes progress.
    #[tokio::test]
    async fn the_rules_tracker_can_write_progress_for_a_model() {
        let dir = tiny_llama_with(|m| m + "\n[progress]\ntracker = \"rules\"\n");
        let by_manifest = load(dir.path().to_str().unwrap(), ModelOptions::default()).unwrap();
        let by_flag =
            load(tiny_llama().to_str().unwrap(), ModelOptions { progress_rules: true, ..Default::default() }).unwrap();
        for loaded in [by_manifest, by_flag] {
            assert!(loaded.capabilities.roles.contains(&Role::Progress));
            let params = ProgressUpdateParams {
                subtask: "take a mug".into(),
                previous_progress: String::new(),
                action: "go to shelf 1".into(),
                observation: Observation::text("You arrive at shelf 1. On the shelf 1, you see a mug 2."),
                sampling: None,
                meta: None,
            };
            let r = loaded.agent.update(&params, &CancellationToken::new()).await.unwrap();
            assert_eq!(r.progress, "checked: shelf 1 | found: mug 2 (shelf 1) | last: You arrive at shelf 1.");
            assert_eq!(r.usage.progress.prompt_tokens, 0, "no model call");
        }
    }

    /// A flat policy: the model acts, the task is the only subtask, and progress is the whole
    /// history (the full-history baseline's composition, from its manifest alone).
    #[tokio::test]
    async fn a_manifest_can_make_a_flat_full_history_policy() {
        let dir = tiny_llama_with(|m| {
            m.replace(r#"roles = ["high", "low", "progress"]"#, r#"roles = ["low"]"#)
                + "\n[high]\nplanner = \"whole-task\"\n\n[progress]\ntracker = \"history\"\n"
        });
        let loaded = load(dir.path().to_str().unwrap(), ModelOptions::default()).unwrap();
        for role in Role::ALL {
            assert!(loaded.capabilities.roles.contains(&role), "{role:?} announced");
        }
        let c = CancellationToken::new();
        let plan = PlanParams {
            task: "put a mug on the desk.".into(),
            completed_subtasks: vec![],
            last_progress: String::new(),
            observation: Observation::text("You are in the middle of a room."),
            sampling: None,
            meta: None,
        };
        assert_eq!(loaded.agent.plan(&plan, &c).await.unwrap().subtask, "put a mug on the desk.");
        let mut params = ProgressUpdateParams {
            subtask: "put a mug on the desk.".into(),
            previous_progress: String::new(),
            action: "go to shelf 1".into(),
            observation: Observation::text("You arrive at shelf 1.").with_part("room", "desk 1, shelf 1"),
            sampling: None,
            meta: None,
        };
        let first = loaded.agent.update(&params, &c).await.unwrap().progress;
        params.previous_progress = first;
        params.action = "go to desk 1".into();
        params.observation = Observation::text("You arrive at desk 1.");
        let second = loaded.agent.update(&params, &c).await.unwrap().progress;
        assert_eq!(second, "> go to shelf 1\nYou arrive at shelf 1.\n> go to desk 1\nYou arrive at desk 1.");
    }

    /// A full-history prompt that outgrows the window keeps its newest entries and is served; a
    /// single entry over the window is still refused as a limit error.
    #[tokio::test]
    async fn a_full_history_over_the_window_keeps_its_newest_entries() {
        use stepwire_sdk::protocol::{ActParams, Sampling};
        use stepwire_sdk::rules::HistoryProgress;
        let dir = tiny_llama_with(|m| m + "\n[high]\nplanner = \"whole-task\"\n\n[progress]\ntracker = \"history\"\n");
        let options = ModelOptions { max_prompt_tokens: Some(300), ..ModelOptions::default() };
        let loaded = load(dir.path().to_str().unwrap(), options).unwrap();
        let act = |progress: String| ActParams {
            subtask: "put a mug on the desk.".into(),
            progress,
            observation: Observation::text("You arrive at desk 1."),
            admissible_actions: None,
            sampling: Some(Sampling { max_tokens: Some(4), ..Sampling::default() }),
            meta: None,
        };
        let long = (0..60).fold(String::new(), |h, i| {
            HistoryProgress::append(&h, &format!("go to shelf {i}"), "You arrive there. Nothing is on it.")
        });
        let c = CancellationToken::new();
        let r = loaded.agent.act(&act(long), &c).await;
        assert!(r.is_ok(), "{r:?}");
        let one = HistoryProgress::append("", "look", &"a mug on a shelf ".repeat(100));
        match loaded.agent.act(&act(one), &c).await {
            Err(PolicyError::LimitExceeded(m)) => assert!(m.contains("limit of 300"), "{m}"),
            other => panic!("expected a limit error, got {other:?}"),
        }
    }
}
