//! Error codes: JSON-RPC's, LSP's, and stepwire's own range for environment and policy faults.
//!
//! Protocol faults (the message was wrong) and environment faults (the message was fine, the world
//! refused) live in separate ranges so that a host can tell "fix your client" from "the game said no".

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::jsonrpc::ResponseError;

/// An error code: an open set of integers. A peer must accept codes it does not know and treat
/// them by range: `-32768..=-32000` protocol faults, `-31999..=-31000` stepwire's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct ErrorCode(pub i64);

/// One code this protocol defines, as `schemas/protocol.json` and the docs list it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KnownCode {
    pub code: ErrorCode,
    /// Stable snake_case name (logs, docs, the Python SDK's constant in upper case).
    pub name: &'static str,
    pub meaning: &'static str,
}

/// Declares every code once: its constant, its name and its meaning, from which come the
/// constants, [`ErrorCode::KNOWN`], the docs table and the Python SDK's copy.
macro_rules! error_codes {
    ($($constant:ident = $code:literal, $name:literal, $meaning:literal;)*) => {
        impl ErrorCode {
            $(
                #[doc = concat!("`", stringify!($code), "` ", $name, ": ", $meaning)]
                pub const $constant: ErrorCode = ErrorCode($code);
            )*
            /// Every code this protocol defines, in declaration order.
            pub const KNOWN: &'static [KnownCode] =
                &[$(KnownCode { code: ErrorCode($code), name: $name, meaning: $meaning }),*];
        }
    };
}

error_codes! {
    PARSE_ERROR = -32700, "parse_error", "the frame's body is not valid JSON (or not UTF-8)";
    INVALID_REQUEST = -32600, "invalid_request",
        "valid JSON, but not a JSON-RPC 2.0 message (or a bad frame header, or an oversized frame)";
    METHOD_NOT_FOUND = -32601, "method_not_found",
        "the method does not exist, or the peer did not announce it in its capabilities";
    INVALID_PARAMS = -32602, "invalid_params", "the params do not match the method's schema";
    INTERNAL_ERROR = -32603, "internal_error",
        "the peer failed in a way it did not foresee; the message carries the detail";
    SERVER_NOT_INITIALIZED = -32002, "server_not_initialized",
        "a request other than `initialize` arrived before `initialize` (LSP's code)";
    SHUTTING_DOWN = -32003, "shutting_down", "a request arrived after `shutdown`; only `exit` may follow";
    REQUEST_CANCELLED = -32800, "request_cancelled",
        "the request was cancelled with `$/cancelRequest` and its work stopped (LSP's code)";
    INVALID_ACTION = -31001, "invalid_action", "the environment rejected the action (not parseable, or not valid here)";
    ENVIRONMENT_CRASHED = -31002, "environment_crashed",
        "the environment process or its engine died; the episode is lost, reset to go on";
    UNKNOWN_TASK = -31003, "unknown_task", "no such task, split or variation; `data` lists what exists";
    EPISODE_OVER = -31004, "episode_over", "the episode has ended (`done` was true); reset before stepping again";
    UNSUPPORTED_PROTOCOL_VERSION = -31005, "unsupported_protocol_version",
        "the peer speaks none of our protocol versions; `data.supported` lists ours";
    NO_EPISODE = -31006, "no_episode", "`env/step` (or admissible or expert actions) before any `env/reset`";
    NO_EXPERT = -31007, "no_expert", "the bridge has no expert for this environment or this state";
    POLICY_FAILED = -31010, "policy_failed", "a policy failed to produce an output (model error, empty decode)";
    UNKNOWN_SESSION = -31011, "unknown_session", "the named server-held session does not exist (expired or never opened)";
    LIMIT_EXCEEDED = -31012, "limit_exceeded",
        "the request exceeded a limit (message size, prompt length, generated tokens, requests in flight)";
}

impl ErrorCode {
    pub fn code(self) -> i64 {
        self.0
    }

    pub fn from_code(code: i64) -> Self {
        ErrorCode(code)
    }

    /// This code's entry in [`ErrorCode::KNOWN`]; `None` for a code this build does not know.
    pub fn known(self) -> Option<&'static KnownCode> {
        Self::KNOWN.iter().find(|k| k.code == self)
    }

    /// The stable snake_case name, or `other` for a code this build does not know.
    pub fn name(self) -> &'static str {
        self.known().map_or("other", |k| k.name)
    }

    /// True for faults of the environment or policy rather than of the message.
    pub fn is_domain_fault(self) -> bool {
        (-31999..=-31000).contains(&self.0)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0, self.name())
    }
}

/// `data` of error -31005 (`unsupported_protocol_version`): the versions this peer speaks.
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
        Self::new(ErrorCode::PARSE_ERROR, m)
    }
    pub fn invalid_request(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::INVALID_REQUEST, m)
    }
    pub fn method_not_found(method: &str) -> Self {
        Self::new(ErrorCode::METHOD_NOT_FOUND, format!("unknown method `{method}`"))
    }
    pub fn invalid_params(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::INVALID_PARAMS, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::INTERNAL_ERROR, m)
    }
    /// -32800 for work stopped before it finished: `data.completed` is false. (A peer that
    /// withholds the result of work that did finish says `completed: true`.)
    pub fn cancelled() -> Self {
        Self::new(ErrorCode::REQUEST_CANCELLED, "request cancelled")
            .with_data(serde_json::json!({ "completed": false }))
    }

    pub fn unsupported_version(requested: u32) -> Self {
        let data = UnsupportedVersionData { requested, supported: super::SUPPORTED_PROTOCOL_VERSIONS.to_vec() };
        Self::new(
            ErrorCode::UNSUPPORTED_PROTOCOL_VERSION,
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
