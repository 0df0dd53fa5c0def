//! Lifecycle messages shared by both planes, modelled on LSP.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::agent::AgentCapabilities;
use super::environment::EnvironmentCapabilities;
use super::jsonrpc::RequestId;
use super::Meta;

/// Name and version of a peer, for logs and diagnostics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PeerInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// What the client (host or stepwire) can take from the server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientCapabilities {
    /// The client shows `$/progress` notifications.
    #[serde(default)]
    pub progress: bool,
    /// The client records `$/logMessage` notifications.
    #[serde(default)]
    pub log_messages: bool,
}

/// What the server offers. A bridge fills `environment`, the stepwire agent server fills `agent`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerCapabilities {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentCapabilities>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentCapabilities>,
}

/// `initialize` request params: the first message of every connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InitializeParams {
    /// The protocol major version the client speaks.
    pub protocol_version: u32,
    pub client_info: PeerInfo,
    #[serde(default)]
    pub capabilities: ClientCapabilities,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Meta,
}

/// `initialize` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InitializeResult {
    pub protocol_version: u32,
    pub server_info: PeerInfo,
    pub capabilities: ServerCapabilities,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Meta,
}

/// `initialized` notification params (empty): the client is ready for server-sent messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InitializedParams {
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Meta,
}

/// `$/cancelRequest` notification params. The cancelled request is still answered (-32800,
/// or its result when it finished first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CancelParams {
    pub id: RequestId,
}

/// A progress token: chosen by whoever starts the long work.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ProgressToken {
    Number(i64),
    String(String),
}

/// `$/progress` notification params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProgressParams {
    pub token: ProgressToken,
    pub value: ProgressValue,
}

/// Where long work (loading a model, starting a JVM, generating games) stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ProgressValue {
    Begin {
        title: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        percentage: Option<u32>,
    },
    Report {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        percentage: Option<u32>,
    },
    End {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
}

/// Severity of a `$/logMessage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// `$/logMessage` notification params: a log line a peer wants the other side to see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LogMessageParams {
    pub level: LogLevel,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}
