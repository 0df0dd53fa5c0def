//! The one task that owns the environment: env calls run one at a time, in arrival order.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::episodes::Episodes;
use crate::environment::Environment;
use crate::protocol::{AdmissibleActionsResult, ResetParams, RpcError, TasksResult};
use crate::rpc::to_result;

/// An environment call, params already validated.
#[derive(Debug)]
pub(crate) enum EnvCall {
    Tasks,
    Reset(ResetParams),
    Step(String),
    Admissible,
    Expert,
    /// Answers once every earlier call is done (used by `shutdown`).
    Barrier,
}

pub(crate) struct Job {
    pub call: EnvCall,
    pub cancel: CancellationToken,
    pub reply: oneshot::Sender<Result<Value, RpcError>>,
}

pub(crate) type JobQueue = mpsc::UnboundedSender<Job>;

/// Runs jobs until every sender is gone. A cancelled job is skipped, or dropped mid-call: the
/// episode is then in whatever state the environment left it, and a reset is the way on.
pub(crate) async fn run<E: Environment>(mut env: E, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut episodes = Episodes::new(env.capabilities().reset_options);
    while let Some(job) = jobs.recv().await {
        if job.cancel.is_cancelled() {
            let _ = job.reply.send(Err(RpcError::cancelled()));
            continue;
        }
        let result = tokio::select! {
            biased;
            r = AssertUnwindSafe(call(&mut env, &mut episodes, job.call)).catch_unwind() => r.unwrap_or_else(|p| {
                let what = p.downcast_ref::<&str>().map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                tracing::error!("environment panicked: {what}");
                Err(RpcError::internal(format!("environment panicked: {what}")))
            }),
            _ = job.cancel.cancelled() => Err(RpcError::cancelled()),
        };
        let _ = job.reply.send(result);
    }
}

async fn call<E: Environment>(env: &mut E, episodes: &mut Episodes, call: EnvCall) -> Result<Value, RpcError> {
    match call {
        EnvCall::Tasks => to_result(TasksResult { tasks: episodes.tasks(env).await? }),
        EnvCall::Reset(p) => {
            let p = episodes.resolve(env, p).await?;
            let reset = env.reset(p).await;
            episodes.crashed_if(&reset);
            episodes.started(&reset);
            to_result(reset?)
        }
        EnvCall::Step(action) => {
            episodes.check(true)?;
            let step = env.step(&action).await;
            episodes.crashed_if(&step);
            episodes.stepped(&step);
            to_result(step?)
        }
        EnvCall::Admissible => {
            episodes.check(false)?;
            let actions = env.admissible_actions().await;
            episodes.crashed_if(&actions);
            to_result(AdmissibleActionsResult { actions: actions? })
        }
        EnvCall::Expert => {
            episodes.check(false)?;
            let expert = env.expert_action().await;
            episodes.crashed_if(&expert);
            to_result(expert?)
        }
        EnvCall::Barrier => Ok(Value::Null),
    }
}
