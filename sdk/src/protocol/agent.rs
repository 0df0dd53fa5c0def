//! Agent plane: a host (client) calls the stepwire runtime (server).
//!
//! Each request carries every input its policy reads, so the runtime keeps no episode memory and
//! any replica can answer any request.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::observation::Observation;
use super::usage::Usage;
use super::Meta;

/// The three STEP-HRL roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The high-level policy: proposes the next subtask.
    High,
    /// The low-level policy: picks an action and says when the subtask is done.
    Low,
    /// The local-progress module: rewrites the compact summary after each action.
    Progress,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::High, Role::Low, Role::Progress];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::High => "high",
            Role::Low => "low",
            Role::Progress => "progress",
        }
    }
}

/// What the agent server offers, in its `initialize` result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentCapabilities {
    /// Roles the loaded policies serve.
    pub roles: Vec<Role>,
    /// `admissibleActions` constrain the low-level output.
    #[serde(default)]
    pub constrained_decoding: bool,
    /// The policy's name (model directory or `expert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// Decoding settings a request may override. Greedy when `temperature` is 0 or absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sampling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
}

/// `agent/plan` params: the high-level policy's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanParams {
    pub task: String,
    #[serde(default)]
    pub completed_subtasks: Vec<String>,
    /// Final local progress of the last completed subtask (empty before the first).
    #[serde(default)]
    pub last_progress: String,
    pub observation: Observation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Meta,
}

/// `agent/plan` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlanResult {
    pub subtask: String,
    pub usage: Usage,
}

/// `agent/act` params: the low-level policy's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActParams {
    pub subtask: String,
    #[serde(default)]
    pub progress: String,
    pub observation: Observation,
    /// When present, the action is one of these exactly (constrained decoding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admissible_actions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Meta,
}

/// `agent/act` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActResult {
    pub action: String,
    /// The low-level policy judges the subtask complete after this action.
    pub subtask_done: bool,
    pub usage: Usage,
}

/// `agent/progress` params: the local-progress module's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgressUpdateParams {
    pub subtask: String,
    #[serde(default)]
    pub previous_progress: String,
    pub action: String,
    /// The observation the action produced.
    pub observation: Observation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Meta,
}

/// `agent/progress` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProgressUpdateResult {
    pub progress: String,
    pub usage: Usage,
}

/// Everything the method remembers between steps: compact, fixed in kind, carried by the host.
///
/// No policy reads more than this, so prompts stay the same size however long the episode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AugmentedState {
    pub task: String,
    #[serde(default)]
    pub completed_subtasks: Vec<String>,
    /// The subtask in hand; `null` when the next step must plan one.
    #[serde(default)]
    pub subtask: Option<String>,
    /// Local progress of the subtask in hand.
    #[serde(default)]
    pub progress: String,
    /// Final local progress of the last completed subtask.
    #[serde(default)]
    pub last_progress: String,
    /// The action sent to the environment last step; its result is the next step's observation.
    #[serde(default)]
    pub pending_action: Option<String>,
    /// The low level said the subtask is done with `pending_action`.
    #[serde(default)]
    pub subtask_done: bool,
    /// Environment steps taken so far.
    #[serde(default)]
    pub steps: u64,
}

impl AugmentedState {
    pub fn new(task: impl Into<String>) -> Self {
        AugmentedState { task: task.into(), ..Default::default() }
    }
}

/// `agent/step` params: one call per environment step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentStepParams {
    pub state: AugmentedState,
    /// The current observation (the result of `state.pendingAction`, or the reset observation).
    pub observation: Observation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admissible_actions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Meta,
}

/// What happened inside one `agent/step`, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepDecisions {
    /// New progress written for the pending action, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Subtask planned this step, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_subtask: Option<String>,
}

/// `agent/step` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentStepResult {
    /// The action to send to the environment.
    pub action: String,
    pub subtask_done: bool,
    /// The state to send with the next `agent/step`.
    pub next_state: AugmentedState,
    pub decisions: StepDecisions,
    pub usage: Usage,
}
