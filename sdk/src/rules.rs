//! Rule-based policies: no model, deterministic. The high level hands out the task itself as the
//! only subtask; the progress module keeps the last few actions and the latest observation's
//! first sentence. Used with the environment's expert to record demonstrations, and as a
//! baseline a model must beat.

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::policy::{HighLevelPolicy, PolicyError, ProgressPolicy};
use crate::protocol::{PlanParams, PlanResult, ProgressUpdateParams, ProgressUpdateResult, Usage};

/// Plans the task itself as one subtask (then "continue: <task>" if it is ever marked done).
#[derive(Debug, Default, Clone)]
pub struct WholeTaskPlanner;

#[async_trait]
impl HighLevelPolicy for WholeTaskPlanner {
    async fn plan(&self, p: &PlanParams, _: &CancellationToken) -> Result<PlanResult, PolicyError> {
        let task = p.task.lines().next().unwrap_or_default().trim().to_string();
        let subtask = if p.completed_subtasks.is_empty() { task } else { format!("continue: {task}") };
        Ok(PlanResult { subtask, usage: Usage::default() })
    }
}

/// Keeps the last `window` actions and what the latest one led to, in one short line.
#[derive(Debug, Clone)]
pub struct RecentActionsProgress {
    pub window: usize,
}

impl Default for RecentActionsProgress {
    fn default() -> Self {
        RecentActionsProgress { window: 3 }
    }
}

#[async_trait]
impl ProgressPolicy for RecentActionsProgress {
    async fn update(
        &self,
        p: &ProgressUpdateParams,
        _: &CancellationToken,
    ) -> Result<ProgressUpdateResult, PolicyError> {
        let previous = p.previous_progress.split(" | result: ").next().unwrap_or_default();
        let mut actions: Vec<&str> =
            previous.strip_prefix("did: ").map(|s| s.split("; ").collect()).unwrap_or_default();
        actions.push(&p.action);
        let keep = actions.len().saturating_sub(self.window);
        let first_sentence = p.observation.text.trim().split_inclusive(['.', '\n']).next().unwrap_or("").trim();
        let progress = format!("did: {} | result: {first_sentence}", actions[keep..].join("; "));
        Ok(ProgressUpdateResult { progress, usage: Usage::default() })
    }
}

/// Takes the first admissible action that is not a look/inventory/help command (so the agent
/// moves), or `look` when the host gave no list. Says the subtask is done when the environment's
/// latest text reports success. A deterministic low level for smoke runs and protocol tests.
#[derive(Debug, Default, Clone)]
pub struct FirstAdmissibleActor;

#[async_trait]
impl crate::policy::LowLevelPolicy for FirstAdmissibleActor {
    async fn act(
        &self,
        p: &crate::protocol::ActParams,
        _: &CancellationToken,
    ) -> Result<crate::protocol::ActResult, PolicyError> {
        const PASSIVE: [&str; 5] = ["look", "inventory", "help", "wait", "examine"];
        let action = match &p.admissible_actions {
            Some(list) if list.is_empty() => {
                return Err(PolicyError::InvalidInput("admissibleActions is empty".into()))
            }
            Some(list) => list.iter().find(|a| !PASSIVE.iter().any(|w| a.starts_with(w))).unwrap_or(&list[0]).clone(),
            None => "look".to_string(),
        };
        let text = p.observation.text.to_lowercase();
        let subtask_done = text.contains("you won") || text.contains("task completed");
        Ok(crate::protocol::ActResult { action, subtask_done, usage: Usage::default() })
    }
}

/// The rule-based agent: all three roles without a model.
#[derive(Debug, Default, Clone)]
pub struct RuleAgent {
    pub planner: WholeTaskPlanner,
    pub actor: FirstAdmissibleActor,
    pub progress: RecentActionsProgress,
}

#[async_trait]
impl HighLevelPolicy for RuleAgent {
    async fn plan(&self, p: &PlanParams, c: &CancellationToken) -> Result<PlanResult, PolicyError> {
        self.planner.plan(p, c).await
    }
}

#[async_trait]
impl crate::policy::LowLevelPolicy for RuleAgent {
    async fn act(
        &self,
        p: &crate::protocol::ActParams,
        c: &CancellationToken,
    ) -> Result<crate::protocol::ActResult, PolicyError> {
        self.actor.act(p, c).await
    }
}

#[async_trait]
impl ProgressPolicy for RuleAgent {
    async fn update(
        &self,
        p: &ProgressUpdateParams,
        c: &CancellationToken,
    ) -> Result<ProgressUpdateResult, PolicyError> {
        self.progress.update(p, c).await
    }
}
