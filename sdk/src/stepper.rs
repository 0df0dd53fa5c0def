//! One STEP-HRL step as a pure function of the augmented state: the heart of `agent/step`.
//!
//! The order inside a step: (1) the pending action's result is known, so the progress module
//! rewrites the local progress; (2) if the low level had said the subtask was done, it joins the
//! completed list and its final progress becomes `lastProgress`; (3) with no subtask in hand the
//! high level plans one; (4) the low level picks the action.

use tokio_util::sync::CancellationToken;

use crate::policy::{HighLevelPolicy, LowLevelPolicy, PolicyError, ProgressPolicy};
use crate::protocol::{
    ActParams, AgentStepParams, AgentStepResult, PlanParams, ProgressUpdateParams, StepDecisions, Usage,
};

/// Where the low-level action comes from.
pub enum ActionChoice<'a> {
    /// The low-level policy decides.
    Policy(&'a dyn LowLevelPolicy),
    /// The action is given (an expert's, or a human's); the subtask ends when `subtask_done` says.
    Given { action: String, subtask_done: bool },
}

/// Runs one step of the method. Pure in the state: the result's `nextState` is all the caller
/// keeps.
pub async fn step(
    high: &dyn HighLevelPolicy,
    low: ActionChoice<'_>,
    progress: &dyn ProgressPolicy,
    params: &AgentStepParams,
    cancel: &CancellationToken,
) -> Result<AgentStepResult, PolicyError> {
    let mut state = params.state.clone();
    let mut usage = Usage::default();
    let mut decisions = StepDecisions { progress: None, planned_subtask: None };

    if let (Some(action), Some(subtask)) = (state.pending_action.take(), state.subtask.clone()) {
        let update = progress
            .update(
                &ProgressUpdateParams {
                    subtask,
                    previous_progress: state.progress.clone(),
                    action,
                    observation: params.observation.clone(),
                    sampling: params.sampling.clone(),
                    meta: None,
                },
                cancel,
            )
            .await?;
        usage.add(update.usage);
        state.progress = update.progress.clone();
        decisions.progress = Some(update.progress);
    }

    if state.subtask_done {
        if let Some(done) = state.subtask.take() {
            state.completed_subtasks.push(done);
        }
        state.last_progress = std::mem::take(&mut state.progress);
        state.subtask_done = false;
    }

    let subtask = match &state.subtask {
        Some(s) => s.clone(),
        None => {
            let plan = high
                .plan(
                    &PlanParams {
                        task: state.task.clone(),
                        completed_subtasks: state.completed_subtasks.clone(),
                        last_progress: state.last_progress.clone(),
                        observation: params.observation.clone(),
                        sampling: params.sampling.clone(),
                        meta: None,
                    },
                    cancel,
                )
                .await?;
            usage.add(plan.usage);
            state.subtask = Some(plan.subtask.clone());
            state.progress.clear();
            decisions.planned_subtask = Some(plan.subtask.clone());
            plan.subtask
        }
    };

    let (action, subtask_done) = match low {
        ActionChoice::Given { action, subtask_done } => (action, subtask_done),
        ActionChoice::Policy(low) => {
            let act = low
                .act(
                    &ActParams {
                        subtask,
                        progress: state.progress.clone(),
                        observation: params.observation.clone(),
                        admissible_actions: params.admissible_actions.clone(),
                        sampling: params.sampling.clone(),
                        meta: None,
                    },
                    cancel,
                )
                .await?;
            usage.add(act.usage);
            (act.action, act.subtask_done)
        }
    };

    state.pending_action = Some(action.clone());
    state.subtask_done = subtask_done;
    state.steps += 1;
    Ok(AgentStepResult { action, subtask_done, next_state: state, decisions, usage })
}
