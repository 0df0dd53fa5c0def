//! Error codes: JSON-RPC's, LSP's, and stepwire's own range for environment and policy faults.
//!
//! Protocol faults (the message was wrong) and environment faults (the message was fine, the world
//! refused) live in separate ranges so that a host can tell "fix your client" from "the game said no".

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::jsonrpc::ResponseError;

/// Every code this protocol defines. The set is open: a peer must accept codes it does not know
/// and treat them by range (`-32768..=-32000` protocol, `-31999..=-31000` stepwire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// -32700: the frame's body is not valid JSON (or not UTF-8).
    ParseError,
    /// -32600: valid JSON, but not a JSON-RPC 2.0 message (or a bad frame header / oversized frame).
    InvalidRequest,
    /// -32601: the method does not exist or the peer did not announce it in its capabilities.
    MethodNotFound,
    /// -32602: the params do not match the method's schema.
    InvalidParams,
    /// -32603: the peer failed in a way it did not foresee; the message carries the detail.
    InternalError,
    /// -32002 (LSP): a request other than `initialize` arrived before `initialize`.
    ServerNotInitialized,
    /// -32800 (LSP): the request was cancelled with `$/cancelRequest`; its work was stopped.
    RequestCancelled,
    /// -32600 is also used after `shutdown`; stepwire answers -32003 so the cause is clear.
    ShuttingDown,
    /// -31001: the environment rejected the action (not parseable, or not valid here).
    InvalidAction,
    /// -31002: the environment process or its engine died; the episode is lost, reset to go on.
    EnvironmentCrashed,
    /// -31003: no such task, split or variation; `data` lists what exists.
    UnknownTask,
    /// -31004: the episode has ended (`done` was true); reset before stepping again.
    EpisodeOver,
    /// -31005: the peer speaks none of our protocol versions; `data.supported` lists ours.
    UnsupportedProtocolVersion,
    /// -31006: `env/step` (or admissible/expert actions) before any `env/reset`.
    NoEpisode,
    /// -31007: the bridge has no expert for this environment or this state.
    NoExpert,
    /// -31010: a policy failed to produce an output (model error, empty decode).
    PolicyFailed,
    /// -31011: the named server-held session does not exist (expired or never opened).
    UnknownSession,
    /// -31012: the request exceeded a limit (message size, prompt length, batch size).
    LimitExceeded,
    /// A code this build does not know.
    Other(i64),
}

impl ErrorCode {
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::ParseError,
        ErrorCode::InvalidRequest,
        ErrorCode::MethodNotFound,
        ErrorCode::InvalidParams,
        ErrorCode::InternalError,
        ErrorCode::ServerNotInitialized,
        ErrorCode::RequestCancelled,
        ErrorCode::ShuttingDown,
        ErrorCode::InvalidAction,
        ErrorCode::EnvironmentCrashed,
        ErrorCode::UnknownTask,
        ErrorCode::EpisodeOver,
        ErrorCode::UnsupportedProtocolVersion,
        ErrorCode::NoEpisode,
        ErrorCode::NoExpert,
        ErrorCode::PolicyFailed,
        ErrorCode::UnknownSession,
        ErrorCode::LimitExceeded,
    ];

    pub fn code(self) -> i64 {
        match self {
            ErrorCode::ParseError => -32700,
            ErrorCode::InvalidRequest => -32600,
            ErrorCode::MethodNotFound => -32601,
            ErrorCode::InvalidParams => -32602,
            ErrorCode::InternalError => -32603,
            ErrorCode::ServerNotInitialized => -32002,
            ErrorCode::ShuttingDown => -32003,
            ErrorCode::RequestCancelled => -32800,
            ErrorCode::InvalidAction => -31001,
            ErrorCode::EnvironmentCrashed => -31002,
            ErrorCode::UnknownTask => -31003,
            ErrorCode::EpisodeOver => -31004,
            ErrorCode::UnsupportedProtocolVersion => -31005,
            ErrorCode::NoEpisode => -31006,
            ErrorCode::NoExpert => -31007,
            ErrorCode::PolicyFailed => -31010,
            ErrorCode::UnknownSession => -31011,
            ErrorCode::LimitExceeded => -31012,
            ErrorCode::Other(c) => c,
        }
    }

    pub fn from_code(code: i64) -> Self {
        ErrorCode::ALL.iter().copied().find(|c| c.code() == code).unwrap_or(ErrorCode::Other(code))
    }

    /// A stable snake_case name, used in logs and in the error-code table of the docs.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::ParseError => "parse_error",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::MethodNotFound => "method_not_found",
            ErrorCode::InvalidParams => "invalid_params",
            ErrorCode::InternalError => "internal_error",
            ErrorCode::ServerNotInitialized => "server_not_initialized",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::RequestCancelled => "request_cancelled",
            ErrorCode::InvalidAction => "invalid_action",
            ErrorCode::EnvironmentCrashed => "environment_crashed",
            ErrorCode::UnknownTask => "unknown_task",
            ErrorCode::EpisodeOver => "episode_over",
            ErrorCode::UnsupportedProtocolVersion => "unsupported_protocol_version",
            ErrorCode::NoEpisode => "no_episode",
            ErrorCode::NoExpert => "no_expert",
            ErrorCode::PolicyFailed => "policy_failed",
            ErrorCode::UnknownSession => "unknown_session",
            ErrorCode::LimitExceeded => "limit_exceeded",
            ErrorCode::Other(_) => "other",
        }
    }

    /// True for faults of the environment or policy rather than of the message.
    pub fn is_domain_fault(self) -> bool {
        (-31999..=-31000).contains(&self.code())
    }
}

/// `data` of [`ErrorCode::UnsupportedProtocolVersion`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnsupportedVersionData {
    pub requested: u32,
    pub supported: Vec<u32>,
}

/// A protocol error as a Rust value: what handlers return and clients receive.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} ({} {})", code.code(), code.name())]
pub struct RpcError {
    pub code: ErrorCode,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into(), data: None }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn parse_error(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::ParseError, m)
    }
    pub fn invalid_request(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, m)
    }
    pub fn method_not_found(method: &str) -> Self {
        Self::new(ErrorCode::MethodNotFound, format!("unknown method `{method}`"))
    }
    pub fn invalid_params(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParams, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, m)
    }
    pub fn cancelled() -> Self {
        Self::new(ErrorCode::RequestCancelled, "request cancelled")
    }

    pub fn unsupported_version(requested: u32) -> Self {
        let data = UnsupportedVersionData { requested, supported: super::SUPPORTED_PROTOCOL_VERSIONS.to_vec() };
        Self::new(
            ErrorCode::UnsupportedProtocolVersion,
            format!(
                "protocol version {requested} is not supported; this peer speaks {:?}",
                super::SUPPORTED_PROTOCOL_VERSIONS
            ),
        )
        .with_data(serde_json::to_value(data).expect("plain struct serialises"))
    }
}

impl From<RpcError> for ResponseError {
    fn from(e: RpcError) -> Self {
        ResponseError { code: e.code.code(), message: e.message, data: e.data }
    }
}

impl From<ResponseError> for RpcError {
    fn from(e: ResponseError) -> Self {
        RpcError { code: ErrorCode::from_code(e.code), message: e.message, data: e.data }
    }
}
