//! Turning a `--policy` argument into loaded policies: `rules` (no model) or a model directory
//! with a `stepwire.toml` manifest (ONNX). `expert` is the runner's business, since the expert
//! lives in the environment.

use std::path::Path;
use std::sync::Arc;

use stepwire_sdk::policy::Agent;
use stepwire_sdk::protocol::{AgentCapabilities, Role};
use stepwire_sdk::rules::RuleAgent;

/// Where inference runs: `cpu`, `cuda` or `cuda:N`. CUDA needs a build with `--features cuda`;
/// without it, or without a GPU, stepwire logs one line and runs on CPU.
pub use stepwire_onnx::Device;

/// How model policies run; the same flags on `stepwire run` and `stepwire serve`.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
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
}

/// A loaded agent and what it announces.
pub struct LoadedAgent {
    pub agent: Arc<dyn Agent>,
    pub capabilities: AgentCapabilities,
}

/// Loads `rules` or a model directory.
pub fn load(spec: &str, options: ModelOptions) -> anyhow::Result<LoadedAgent> {
    if spec == "rules" {
        return Ok(LoadedAgent {
            agent: Arc::new(RuleAgent::default()),
            capabilities: AgentCapabilities {
                roles: Role::ALL.to_vec(),
                constrained_decoding: true,
                policy: Some("rules".into()),
            },
        });
    }
    let dir = Path::new(spec);
    if !dir.join("stepwire.toml").is_file() {
        anyhow::bail!(
            "--policy {spec}: expected `rules`, `expert` (runner only) or a model directory with a stepwire.toml manifest"
        );
    }
    load_onnx(dir, options)
}

fn load_onnx(dir: &Path, options: ModelOptions) -> anyhow::Result<LoadedAgent> {
    let defaults = stepwire_onnx::LoadOptions::default();
    let batch = stepwire_onnx::BatchOptions { overlap_prefill: !options.one_session, ..defaults.batch };
    let options =
        stepwire_onnx::LoadOptions { device: options.device, keep_graph: options.keep_graph, batch, ..defaults };
    let policy = stepwire_onnx::OnnxPolicy::load(dir, options)?;
    let capabilities = policy.capabilities();
    tracing::info!(policy = %dir.display(), roles = ?capabilities.roles, "policy loaded");
    Ok(LoadedAgent { agent: policy, capabilities })
}
