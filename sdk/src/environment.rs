//! The Environment trait: what a bridge author implements, and what a bridge client offers.
//!
//! The same trait has two sides: an author implements it and `harness::serve_stdio` serves it over
//! the environment plane; `client::BridgeClient` implements it by calling a bridge process. So the
//! controller and runner play an in-process environment and a remote one with the same code.

use async_trait::async_trait;

use crate::protocol::{
    EnvironmentCapabilities, ErrorCode, ExpertActionResult, ResetParams, ResetResult, RpcError, StepResult, TaskInfo,
};

/// An environment fault, as authors raise it and clients receive it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvError {
    #[error("invalid action: {0}")]
    InvalidAction(String),
    #[error("unknown task: {0}")]
    UnknownTask(String),
    #[error("episode over: reset before stepping again")]
    EpisodeOver,
    #[error("no episode: call reset first")]
    NoEpisode,
    #[error("no expert action: {0}")]
    NoExpert(String),
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("invalid params: {0}")]
    InvalidParams(String),
    #[error("environment crashed: {0}")]
    Crashed(String),
    #[error("cancelled")]
    Cancelled,
    /// Any other protocol error received from a remote bridge.
    #[error("{0}")]
    Rpc(RpcError),
}

impl From<EnvError> for RpcError {
    fn from(e: EnvError) -> Self {
        let msg = e.to_string();
        match e {
            EnvError::InvalidAction(_) => RpcError::new(ErrorCode::INVALID_ACTION, msg),
            EnvError::UnknownTask(_) => RpcError::new(ErrorCode::UNKNOWN_TASK, msg),
            EnvError::EpisodeOver => RpcError::new(ErrorCode::EPISODE_OVER, msg),
            EnvError::NoEpisode => RpcError::new(ErrorCode::NO_EPISODE, msg),
            EnvError::NoExpert(_) => RpcError::new(ErrorCode::NO_EXPERT, msg),
            EnvError::Unsupported(_) => RpcError::new(ErrorCode::METHOD_NOT_FOUND, msg),
            EnvError::InvalidParams(_) => RpcError::new(ErrorCode::INVALID_PARAMS, msg),
            EnvError::Crashed(_) => RpcError::new(ErrorCode::ENVIRONMENT_CRASHED, msg),
            EnvError::Cancelled => RpcError::cancelled(),
            EnvError::Rpc(e) => e,
        }
    }
}

impl From<RpcError> for EnvError {
    fn from(e: RpcError) -> Self {
        match e.code {
            ErrorCode::INVALID_ACTION => EnvError::InvalidAction(e.message),
            ErrorCode::UNKNOWN_TASK => EnvError::UnknownTask(e.message),
            ErrorCode::EPISODE_OVER => EnvError::EpisodeOver,
            ErrorCode::NO_EPISODE => EnvError::NoEpisode,
            ErrorCode::NO_EXPERT => EnvError::NoExpert(e.message),
            ErrorCode::ENVIRONMENT_CRASHED => EnvError::Crashed(e.message),
            ErrorCode::REQUEST_CANCELLED => EnvError::Cancelled,
            _ => EnvError::Rpc(e),
        }
    }
}

/// A text environment. One instance plays one episode at a time.
///
/// Only `capabilities`, `tasks`, `reset` and `step` are required; the others answer "not
/// supported" unless the capabilities announce them.
#[async_trait]
pub trait Environment: Send {
    /// Announced in the `initialize` result.
    fn capabilities(&self) -> EnvironmentCapabilities;

    async fn tasks(&mut self) -> Result<Vec<TaskInfo>, EnvError>;

    async fn reset(&mut self, params: ResetParams) -> Result<ResetResult, EnvError>;

    async fn step(&mut self, action: &str) -> Result<StepResult, EnvError>;

    async fn admissible_actions(&mut self) -> Result<Vec<String>, EnvError> {
        Err(EnvError::Unsupported("env/admissibleActions".into()))
    }

    /// The expert's next action (`action: None` when it has none) and, optionally, the subtask it
    /// serves.
    async fn expert_action(&mut self) -> Result<ExpertActionResult, EnvError> {
        Err(EnvError::Unsupported("env/expertAction".into()))
    }
}
