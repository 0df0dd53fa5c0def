//! Turning a `--policy` argument into loaded policies: `rules` (no model) or a model directory
//! with a `stepwire.toml` manifest (ONNX). `expert` is the runner's business, since the expert
//! lives in the environment.

use std::path::Path;
use std::sync::Arc;

use stepwire_sdk::policy::Agent;
use stepwire_sdk::protocol::{AgentCapabilities, Role};
use stepwire_sdk::rules::RuleAgent;

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Device {
    #[default]
    Cpu,
    /// The CUDA execution provider (build with `--features cuda`); falls back to CPU with a log
    /// line when no GPU or provider is present.
    Cuda,
}

/// A loaded agent and what it announces.
pub struct LoadedAgent {
    pub agent: Arc<dyn Agent>,
    pub capabilities: AgentCapabilities,
}

/// Loads `rules` or a model directory.
pub fn load(spec: &str, device: Device) -> anyhow::Result<LoadedAgent> {
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
    load_onnx(dir, device)
}

fn load_onnx(dir: &Path, device: Device) -> anyhow::Result<LoadedAgent> {
    let _ = device;
    anyhow::bail!("ONNX policies are not wired in yet ({})", dir.display())
}
