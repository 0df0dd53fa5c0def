//! An agent for the server's own tests: its `act` starts, says so, and then waits until it is
//! released, watching its cancellation token from outside (a dropped call is never polled again,
//! but its token still fires).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use stepwire_sdk::policy::{HighLevelPolicy, LowLevelPolicy, PolicyError, ProgressPolicy};
use stepwire_sdk::protocol::*;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct HeldAgent {
    /// `act` calls started so far.
    pub started: AtomicUsize,
    /// Notified as each `act` starts.
    pub started_signal: Notify,
    /// Releases every waiting `act`.
    pub release: Notify,
    /// Set once any call's cancellation token fired.
    pub cancelled: Arc<AtomicBool>,
}

#[async_trait]
impl HighLevelPolicy for HeldAgent {
    async fn plan(&self, _: &PlanParams, _: &CancellationToken) -> Result<PlanResult, PolicyError> {
        Err(PolicyError::Failed("unused".into()))
    }
}

#[async_trait]
impl LowLevelPolicy for HeldAgent {
    async fn act(&self, _: &ActParams, cancel: &CancellationToken) -> Result<ActResult, PolicyError> {
        let (token, seen) = (cancel.clone(), self.cancelled.clone());
        tokio::spawn(async move {
            token.cancelled().await;
            seen.store(true, Ordering::SeqCst);
        });
        let released = self.release.notified();
        self.started.fetch_add(1, Ordering::SeqCst);
        self.started_signal.notify_one();
        released.await;
        Ok(ActResult { action: "look".into(), subtask_done: false, usage: Default::default() })
    }
}

#[async_trait]
impl ProgressPolicy for HeldAgent {
    async fn update(
        &self,
        _: &ProgressUpdateParams,
        _: &CancellationToken,
    ) -> Result<ProgressUpdateResult, PolicyError> {
        Err(PolicyError::Failed("unused".into()))
    }
}
