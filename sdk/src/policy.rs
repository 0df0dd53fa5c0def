//! The three STEP-HRL roles as traits. ONNX models, the bridge's expert, rule-based progress
//! trackers and anything a user writes plug in here; the controller, the runner and the agent
//! server call only these traits.

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::protocol::{
    ActParams, ActResult, ErrorCode, PlanParams, PlanResult, ProgressUpdateParams, ProgressUpdateResult, RpcError,
};

/// Why a policy produced no output.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The caller cancelled; the work stopped early.
    #[error("cancelled")]
    Cancelled,
    /// The inputs cannot be served (prompt too long, empty admissible list, ...).
    #[error("{0}")]
    InvalidInput(String),
    /// The request is larger than this policy serves (prompt tokens, generation length); the
    /// message names the limit and the flag that sets it.
    #[error("{0}")]
    LimitExceeded(String),
    /// The policy failed (model error, nothing decodable).
    #[error("{0}")]
    Failed(String),
}

impl From<PolicyError> for RpcError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::Cancelled => RpcError::cancelled(),
            PolicyError::InvalidInput(m) => RpcError::invalid_params(m),
            PolicyError::LimitExceeded(m) => RpcError::new(ErrorCode::LIMIT_EXCEEDED, m),
            PolicyError::Failed(m) => RpcError::new(ErrorCode::POLICY_FAILED, m),
        }
    }
}

/// The high-level policy: proposes the next subtask.
#[async_trait]
pub trait HighLevelPolicy: Send + Sync {
    async fn plan(&self, params: &PlanParams, cancel: &CancellationToken) -> Result<PlanResult, PolicyError>;
}

/// The low-level policy: picks one action and says whether the subtask is done.
#[async_trait]
pub trait LowLevelPolicy: Send + Sync {
    async fn act(&self, params: &ActParams, cancel: &CancellationToken) -> Result<ActResult, PolicyError>;
}

/// The local-progress module: rewrites the compact summary after each action.
#[async_trait]
pub trait ProgressPolicy: Send + Sync {
    async fn update(
        &self,
        params: &ProgressUpdateParams,
        cancel: &CancellationToken,
    ) -> Result<ProgressUpdateResult, PolicyError>;
}

/// All three roles, as one agent. Blanket-implemented for any type that has all three.
pub trait Agent: HighLevelPolicy + LowLevelPolicy + ProgressPolicy {}
impl<T: HighLevelPolicy + LowLevelPolicy + ProgressPolicy> Agent for T {}
