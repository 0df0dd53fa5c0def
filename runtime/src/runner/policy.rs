//! Which policies a run uses: the environment's expert with a rule-based planner and progress
//! tracker, or an agent loaded through [`crate::policies::load`] (`rules`, `random`, or a model directory).

use std::sync::Arc;

use async_trait::async_trait;
use stepwire_sdk::controller::{ActionSource, Policies};
use stepwire_sdk::policy::{Agent, HighLevelPolicy, LowLevelPolicy, PolicyError, ProgressPolicy};
use stepwire_sdk::protocol::{
    ActParams, ActResult, PlanParams, PlanResult, ProgressUpdateParams, ProgressUpdateResult,
};
use stepwire_sdk::rules::{ProgressTracker, WholeTaskPlanner};
use tokio_util::sync::CancellationToken;

use crate::policies::ModelOptions;

/// `--policy`: `expert`, or anything [`crate::policies::load`] understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySpec {
    Expert,
    Loaded(String),
}

impl PolicySpec {
    pub fn parse(s: &str) -> PolicySpec {
        if s == "expert" {
            PolicySpec::Expert
        } else {
            PolicySpec::Loaded(s.to_string())
        }
    }

    /// For the report.
    pub fn label(&self) -> String {
        match self {
            PolicySpec::Expert => "expert".into(),
            PolicySpec::Loaded(s) => s.clone(),
        }
    }
}

/// The policies of a run, shared by its workers.
#[derive(Clone)]
pub enum RunPolicies {
    /// The expert acts (and names subtasks, when it knows them); the rules tracker writes progress.
    Expert { high: Arc<WholeTaskPlanner>, progress: Arc<ProgressTracker> },
    /// A loaded agent; `constrained`: it chooses among admissible actions (else it writes
    /// actions freely and the runner does not ask the bridge for them).
    Agent { roles: AgentRoles, constrained: bool },
}

impl RunPolicies {
    pub fn load(spec: &PolicySpec, options: ModelOptions) -> anyhow::Result<RunPolicies> {
        Ok(match spec {
            PolicySpec::Expert => {
                RunPolicies::Expert { high: Arc::new(WholeTaskPlanner), progress: Arc::new(ProgressTracker::default()) }
            }
            PolicySpec::Loaded(s) => {
                let loaded = crate::policies::load(s, options)?;
                RunPolicies::Agent {
                    roles: AgentRoles(loaded.agent),
                    constrained: loaded.capabilities.constrained_decoding,
                }
            }
        })
    }

    /// Whether the policy's low level takes admissible actions (the expert's does not need them,
    /// but recordings have always carried them).
    pub fn wants_admissible(&self) -> bool {
        match self {
            RunPolicies::Expert { .. } => true,
            RunPolicies::Agent { constrained, .. } => *constrained,
        }
    }

    /// Borrowed for one episode.
    pub fn borrow(&self) -> Policies<'_> {
        match self {
            RunPolicies::Expert { high, progress } => {
                Policies { high: high.as_ref(), low: ActionSource::EnvironmentExpert, progress: progress.as_ref() }
            }
            RunPolicies::Agent { roles: a, .. } => Policies { high: a, low: ActionSource::Policy(a), progress: a },
        }
    }
}

/// An `Arc<dyn Agent>` seen as each of the three role traits.
#[derive(Clone)]
pub struct AgentRoles(pub Arc<dyn Agent>);

#[async_trait]
impl HighLevelPolicy for AgentRoles {
    async fn plan(&self, p: &PlanParams, c: &CancellationToken) -> Result<PlanResult, PolicyError> {
        self.0.plan(p, c).await
    }
}

#[async_trait]
impl LowLevelPolicy for AgentRoles {
    async fn act(&self, p: &ActParams, c: &CancellationToken) -> Result<ActResult, PolicyError> {
        self.0.act(p, c).await
    }
}

#[async_trait]
impl ProgressPolicy for AgentRoles {
    async fn update(
        &self,
        p: &ProgressUpdateParams,
        c: &CancellationToken,
    ) -> Result<ProgressUpdateResult, PolicyError> {
        self.0.update(p, c).await
    }
}
