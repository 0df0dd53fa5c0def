//! Short constructors for the results an environment author returns, so an environment reads as
//! game logic rather than struct literals. Wire shapes are untouched.

use crate::protocol::{EnvironmentCapabilities, Observation, ResetResult, SplitInfo, StepResult, TaskInfo};

impl EnvironmentCapabilities {
    /// Capabilities with only a name: no admissible actions, no expert, no seeded reset.
    pub fn named(name: impl Into<String>) -> Self {
        EnvironmentCapabilities { name: name.into(), ..Default::default() }
    }

    pub fn with_admissible_actions(mut self) -> Self {
        self.admissible_actions = true;
        self
    }

    pub fn with_expert_action(mut self) -> Self {
        self.expert_action = true;
        self
    }

    pub fn with_seeded_reset(mut self) -> Self {
        self.seeded_reset = true;
        self
    }

    pub fn with_observation_parts<S: Into<String>>(mut self, parts: impl IntoIterator<Item = S>) -> Self {
        self.observation_parts = parts.into_iter().map(Into::into).collect();
        self
    }
}

impl TaskInfo {
    /// A task with `(split name, count)` pairs.
    pub fn new<'a>(id: impl Into<String>, splits: impl IntoIterator<Item = (&'a str, u64)>) -> Self {
        let splits = splits.into_iter().map(|(name, count)| SplitInfo { name: name.into(), count });
        TaskInfo { id: id.into(), description: None, splits: splits.collect() }
    }

    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

impl ResetResult {
    pub fn new(
        episode_id: impl Into<String>,
        task_description: impl Into<String>,
        observation: Observation,
        variation: u64,
    ) -> Self {
        ResetResult {
            episode_id: episode_id.into(),
            task_description: task_description.into(),
            observation,
            variation,
            max_score: None,
            meta: None,
        }
    }

    pub fn with_max_score(mut self, max_score: f64) -> Self {
        self.max_score = Some(max_score);
        self
    }
}

impl StepResult {
    /// A step that did not end the episode.
    pub fn new(observation: Observation, reward: f64, score: f64) -> Self {
        StepResult { observation, reward, score, done: false, won: false, truncated: false, meta: None }
    }

    /// Ends the episode: won, or lost.
    pub fn done(mut self, won: bool) -> Self {
        self.done = true;
        self.won = won;
        self
    }

    /// Ends the episode by a step limit.
    pub fn truncated(mut self) -> Self {
        self.done = true;
        self.truncated = true;
        self
    }
}
