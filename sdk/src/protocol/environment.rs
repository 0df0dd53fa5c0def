//! Environment plane: stepwire (client) calls a bridge (server).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::observation::Observation;
use super::Meta;

/// What a bridge supports, announced in its `initialize` result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentCapabilities {
    /// The environment's name, e.g. `scienceworld`.
    pub name: String,
    /// `env/admissibleActions` is answered.
    #[serde(default)]
    pub admissible_actions: bool,
    /// `env/expertAction` is answered.
    #[serde(default)]
    pub expert_action: bool,
    /// `env/reset` with the same task, split, variation and seed gives the same episode.
    #[serde(default)]
    pub seeded_reset: bool,
    /// Names of the observation parts the bridge fills (e.g. `look`, `inventory`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observation_parts: Vec<String>,
    /// Option names `env/reset` understands in `options` (e.g. `simplifications`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reset_options: Vec<String>,
}

/// `env/tasks` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TasksParams {
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Meta,
}

/// One split of a task and how many variations (or games) it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SplitInfo {
    pub name: String,
    pub count: u64,
}

/// A task the environment offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskInfo {
    /// The id `env/reset` takes.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub splits: Vec<SplitInfo>,
}

/// `env/tasks` result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TasksResult {
    pub tasks: Vec<TaskInfo>,
}

/// `env/reset` params: start a new episode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetParams {
    pub task: String,
    /// Split name; the bridge's default (usually `train`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    /// Index of the variation or game inside the split; chosen from `seed` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variation: Option<u64>,
    /// Seed for every random choice of the episode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Environment-specific options, named in the bridge's `resetOptions` capability.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub options: Map<String, Value>,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Meta,
}

/// `env/reset` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetResult {
    /// The bridge's id of this episode, unique within the bridge process.
    pub episode_id: String,
    pub task_description: String,
    pub observation: Observation,
    /// The variation actually loaded (useful when it was picked from the seed).
    pub variation: u64,
    /// Highest score reachable, when the environment knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_score: Option<f64>,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Meta,
}

/// `env/step` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepParams {
    pub action: String,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Meta,
}

/// `env/step` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepResult {
    pub observation: Observation,
    /// Reward of this step alone.
    pub reward: f64,
    /// Score of the episode so far.
    pub score: f64,
    /// The episode ended (won, lost, or truncated).
    pub done: bool,
    /// The task was completed.
    pub won: bool,
    /// The episode was cut by a step limit rather than ended by the environment.
    #[serde(default)]
    pub truncated: bool,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Meta,
}

/// `env/admissibleActions` params (empty): asked separately because building the list can cost
/// most of a step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AdmissibleActionsParams {
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Meta,
}

/// `env/admissibleActions` result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AdmissibleActionsResult {
    pub actions: Vec<String>,
}

/// `env/expertAction` params (empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExpertActionParams {
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Meta,
}

/// `env/expertAction` result: the expert's next action (`null` when it has none for this state)
/// and, optionally, the subtask that action serves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExpertActionResult {
    pub action: Option<String>,
    /// The subtask this action serves, as a short imperative phrase ("take a apple"), when the
    /// expert knows its own structure. Consecutive actions with the same subtask form one subtask;
    /// a new value means the previous action was the last of its subtask. Absent: the expert gives
    /// no structure and the runner plans the whole task as one subtask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtask: Option<String>,
}

impl ExpertActionResult {
    /// An action with no subtask structure.
    pub fn action(action: impl Into<String>) -> Self {
        ExpertActionResult { action: Some(action.into()), subtask: None }
    }

    /// No action for this state.
    pub fn none() -> Self {
        ExpertActionResult::default()
    }

    /// The same advice, naming the subtask the action serves.
    pub fn with_subtask(mut self, subtask: impl Into<String>) -> Self {
        self.subtask = Some(subtask.into());
        self
    }
}
