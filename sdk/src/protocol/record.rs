//! The recorded form of episodes: augmented step-level transitions, one JSON object a line.
//!
//! The same lines are the training data of the method: each level's (state, output, reward, done,
//! next state) is one record.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::observation::Observation;
use super::usage::RoleUsage;
use super::Meta;

/// Which episode a line belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EpisodeKey {
    pub env: String,
    pub task: String,
    pub split: String,
    pub variation: u64,
    /// Repetition index when the same variation is played more than once in a run.
    #[serde(default)]
    pub repeat: u32,
}

impl EpisodeKey {
    /// A stable textual id, used to resume a run.
    pub fn id(&self) -> String {
        format!("{}/{}/{}/{}#{}", self.env, self.task, self.split, self.variation, self.repeat)
    }
}

/// The high-level policy's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HighState {
    pub task: String,
    pub completed_subtasks: Vec<String>,
    pub last_progress: String,
    pub observation: Observation,
}

/// The low-level policy's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LowState {
    pub subtask: String,
    pub progress: String,
    pub observation: Observation,
}

/// The local-progress module's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgressState {
    pub subtask: String,
    pub previous_progress: String,
    pub action: String,
    pub observation: Observation,
}

/// One level's transition: what it saw, what it said, and what it sees next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "level", rename_all = "lowercase")]
pub enum LevelTransition {
    /// A subtask was planned. `nextState` is the state at the next plan (absent if the episode
    /// ended first); `reward` is the environment reward gathered while the subtask ran.
    High {
        state: HighState,
        subtask: String,
        #[serde(rename = "nextState")]
        next_state: Option<HighState>,
    },
    /// An action was taken.
    Low {
        state: LowState,
        action: String,
        #[serde(rename = "subtaskDone")]
        subtask_done: bool,
        #[serde(rename = "nextState")]
        next_state: LowState,
    },
    /// Progress was rewritten after an action.
    Progress { state: ProgressState, progress: String },
}

/// One recorded transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransitionRecord {
    pub episode: EpisodeKey,
    /// Environment step index the transition belongs to (0-based).
    pub step: u64,
    #[serde(flatten)]
    pub transition: LevelTransition,
    pub reward: f64,
    pub done: bool,
    pub usage: RoleUsage,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Meta,
}

/// How an episode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EpisodeOutcome {
    Won,
    Lost,
    Truncated,
    Failed,
}

/// The closing line of an episode: written after all its transitions, so a run can resume from
/// the last complete episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EpisodeSummary {
    pub episode: EpisodeKey,
    pub task_description: String,
    pub outcome: EpisodeOutcome,
    pub score: f64,
    pub steps: u64,
    /// Why the episode failed, when it did (bridge crash, timeout, policy error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The `env/reset` params the episode was played from (task, split, variation, seed,
    /// options): with the recorded actions, enough to replay it from the file alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<super::ResetParams>,
    /// The reset's `maxScore`, when the environment gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_score: Option<f64>,
    /// The reset's `_meta` from the bridge (for instance the game file it loaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_meta: super::Meta,
    /// Seconds spent in the environment (reset, step, admissible and expert calls).
    pub env_seconds: f64,
    /// Seconds spent in the policies.
    pub agent_seconds: f64,
    pub usage: super::usage::Usage,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Meta,
}

impl EpisodeSummary {
    /// A summary with `outcome` and nothing else yet: no score, steps, timings, usage or reset.
    pub fn new(episode: EpisodeKey, task_description: impl Into<String>, outcome: EpisodeOutcome) -> Self {
        EpisodeSummary {
            episode,
            task_description: task_description.into(),
            outcome,
            score: 0.0,
            steps: 0,
            failure: None,
            reset: None,
            max_score: None,
            reset_meta: None,
            env_seconds: 0.0,
            agent_seconds: 0.0,
            usage: Default::default(),
            meta: None,
        }
    }
}

/// A line of a recording file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RecordLine {
    Transition(TransitionRecord),
    Episode(EpisodeSummary),
}
