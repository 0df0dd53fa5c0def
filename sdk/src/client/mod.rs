//! [`BridgeClient`]: a bridge process on the other end of a pipe, used as an [`Environment`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), stepwire_sdk::environment::EnvError> {
//! use stepwire_sdk::client::{BridgeClient, BridgeCommand, BridgeOptions};
//! let cmd = BridgeCommand::new("python3").args(["-m", "my_bridge"]).env("JAVA_OPTS", "-Xmx2g");
//! let bridge = BridgeClient::spawn(cmd, BridgeOptions::default()).await?;
//! // ... use it as `impl Environment` ...
//! bridge.shutdown().await?;
//! # Ok(()) }
//! ```

mod process;

use std::process::ExitStatus;
use std::time::Duration;

use async_trait::async_trait;

use process::BridgeProcess;
pub use process::{python_interpreter, BridgeCommand};

use crate::environment::{EnvError, Environment};
use crate::protocol::methods::{
    EnvAdmissibleActions, EnvExpertAction, EnvReset, EnvStep, EnvTasks, Exit, Initialize, Initialized, RequestMethod,
    Shutdown,
};
use crate::protocol::{
    AdmissibleActionsParams, ClientCapabilities, EnvironmentCapabilities, ExpertActionParams, ExpertActionResult,
    InitializeParams, InitializeResult, InitializedParams, PeerInfo, ResetParams, ResetResult, RpcError, StepParams,
    StepResult, TaskInfo, TasksParams, PROTOCOL_VERSION,
};
use crate::rpc::{CallError, Connection, ConnectionOptions};

/// Limits and identity of a bridge client.
#[derive(Debug, Clone)]
pub struct BridgeOptions {
    /// Longest wait for any env call; a hung bridge then gives `EnvError::Crashed`.
    pub call_timeout: Duration,
    /// Longest wait for the `initialize` answer (a JVM can take seconds to start).
    pub initialize_timeout: Duration,
    /// Longest wait for `shutdown` and then for the process to exit before it is killed.
    pub shutdown_timeout: Duration,
    /// Largest message accepted from the bridge.
    pub max_message_size: usize,
    /// How many stderr lines to keep for crash reports.
    pub stderr_tail_lines: usize,
    pub client_info: PeerInfo,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        BridgeOptions {
            call_timeout: Duration::from_secs(120),
            initialize_timeout: Duration::from_secs(120),
            shutdown_timeout: Duration::from_secs(10),
            max_message_size: crate::framing::DEFAULT_MAX_MESSAGE_SIZE,
            stderr_tail_lines: 20,
            client_info: PeerInfo { name: "stepwire".into(), version: Some(env!("CARGO_PKG_VERSION").into()) },
        }
    }
}

/// A running, initialized bridge. Dropping it kills the bridge's whole process group.
pub struct BridgeClient {
    conn: Connection,
    process: BridgeProcess,
    info: InitializeResult,
    caps: EnvironmentCapabilities,
    opts: BridgeOptions,
}

impl std::fmt::Debug for BridgeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeClient").field("name", &self.process.name).field("pid", &self.process.pid).finish()
    }
}

impl BridgeClient {
    /// Spawns the bridge, then performs `initialize` / `initialized`.
    pub async fn spawn(cmd: BridgeCommand, opts: BridgeOptions) -> Result<Self, EnvError> {
        let (process, transport) = BridgeProcess::spawn(&cmd, opts.stderr_tail_lines)
            .map_err(|e| EnvError::Crashed(format!("cannot start bridge `{}`: {e}", cmd.name)))?;
        let transport = transport.with_max_message_size(opts.max_message_size);
        // A bridge is ours to run: a message that breaks the protocol means it is broken, now.
        let conn_opts =
            ConnectionOptions { name: cmd.name.clone(), request_timeout: Some(opts.call_timeout), strict: true };
        let conn = Connection::start_client(transport, conn_opts);
        watch_exit(&process, &conn);
        let params = InitializeParams {
            protocol_version: PROTOCOL_VERSION,
            client_info: opts.client_info.clone(),
            capabilities: ClientCapabilities::default(),
            meta: None,
        };
        let mut client = BridgeClient {
            conn,
            process,
            info: InitializeResult {
                protocol_version: PROTOCOL_VERSION,
                server_info: PeerInfo { name: cmd.name.clone(), version: None },
                capabilities: Default::default(),
                meta: None,
            },
            caps: EnvironmentCapabilities::default(),
            opts,
        };
        let timeout = client.opts.initialize_timeout;
        let info = client.call_with_timeout::<Initialize>(params, timeout).await?;
        let caps = info.capabilities.environment.clone().ok_or_else(|| {
            EnvError::Rpc(RpcError::invalid_request(format!(
                "bridge `{}` announced no environment capabilities",
                cmd.name
            )))
        })?;
        client
            .conn
            .notify::<Initialized>(InitializedParams::default())
            .map_err(|e| EnvError::Crashed(e.to_string()))?;
        tracing::info!(bridge = cmd.name, env = caps.name, pid = client.process.pid, "bridge ready");
        client.info = info;
        client.caps = caps;
        Ok(client)
    }

    /// The bridge's `initialize` answer.
    pub fn server_info(&self) -> &InitializeResult {
        &self.info
    }

    pub fn name(&self) -> &str {
        &self.process.name
    }

    /// The bridge process's id (also its process group id).
    pub fn pid(&self) -> Option<u32> {
        self.process.pid
    }

    /// The underlying connection, for methods beyond the environment plane.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Calls method `M` with the configured timeout.
    pub async fn call<M: RequestMethod>(&self, params: M::Params) -> Result<M::Result, EnvError> {
        self.call_with_timeout::<M>(params, self.opts.call_timeout).await
    }

    /// Calls method `M`, waiting at most `timeout`.
    pub async fn call_with_timeout<M: RequestMethod>(
        &self,
        params: M::Params,
        timeout: Duration,
    ) -> Result<M::Result, EnvError> {
        match self.conn.request_with_timeout::<M>(params, Some(timeout)).await {
            Ok(result) => Ok(result),
            Err(e) => Err(self.env_error(e).await),
        }
    }

    /// `shutdown`, `exit`, then waits for the process (killing its group after the timeout).
    pub async fn shutdown(self) -> Result<ExitStatus, EnvError> {
        let wait = self.opts.shutdown_timeout;
        let answered = self.conn.request_with_timeout::<Shutdown>(None, Some(wait)).await;
        if let Err(e) = &answered {
            tracing::warn!(bridge = self.name(), "shutdown not answered cleanly: {e}");
        }
        let _ = self.conn.notify::<Exit>(None);
        match self.process.exit_status(wait).await {
            Some(status) => {
                self.process.kill_group(); // any grandchild left behind
                Ok(status)
            }
            None => {
                tracing::warn!(bridge = self.name(), "bridge did not exit within {wait:?}; killing it");
                self.process
                    .kill()
                    .await
                    .ok_or_else(|| EnvError::Crashed(format!("bridge `{}` could not be reaped", self.name())))
            }
        }
    }

    async fn env_error(&self, e: CallError) -> EnvError {
        match e {
            CallError::Rpc(e) => EnvError::from(e),
            CallError::Timeout { method, after } => EnvError::Crashed(format!(
                "bridge `{}` did not answer `{method}` within {after:?} (hung?)",
                self.name()
            )),
            CallError::Closed(reason) => {
                let status = self.process.exit_status(Duration::from_secs(2)).await;
                let tail = self.process.stderr_tail(Duration::from_millis(500)).await;
                let status = status.map_or_else(|| "still running".to_string(), |s| s.to_string());
                let mut msg = format!("bridge `{}` is gone ({reason}; {status})", self.name());
                if !tail.is_empty() {
                    msg.push_str("; last stderr lines:\n");
                    msg.push_str(&tail.join("\n"));
                }
                EnvError::Crashed(msg)
            }
            CallError::BadMessage { method, detail } => EnvError::Rpc(RpcError::internal(format!(
                "bridge `{}` sent a bad answer to `{method}`: {detail}",
                self.name()
            ))),
        }
    }
}

/// Ends the connection when the bridge process exits, even if its stdout stays open (a
/// grandchild such as a JVM may hold it), and kills what is left of its process group.
fn watch_exit(process: &BridgeProcess, conn: &Connection) {
    let mut status = process.status_watch();
    let conn = conn.clone();
    let pid = process.pid;
    let marker = process.marker.clone();
    tokio::spawn(async move {
        let Ok(status) = status.wait_for(Option::is_some).await.map(|s| *s) else {
            return;
        };
        // Give the reader a moment to take the last answers the bridge wrote before dying.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let status = status.map_or_else(|| "unknown status".into(), |s| s.to_string());
        conn.close_with_reason(&format!("the bridge process exited ({status})"));
        process::kill_group(pid);
        process::kill_marked(&marker);
    });
}

#[async_trait]
impl Environment for BridgeClient {
    fn capabilities(&self) -> EnvironmentCapabilities {
        self.caps.clone()
    }

    async fn tasks(&mut self) -> Result<Vec<TaskInfo>, EnvError> {
        Ok(self.call::<EnvTasks>(TasksParams::default()).await?.tasks)
    }

    async fn reset(&mut self, params: ResetParams) -> Result<ResetResult, EnvError> {
        self.call::<EnvReset>(params).await
    }

    async fn step(&mut self, action: &str) -> Result<StepResult, EnvError> {
        self.call::<EnvStep>(StepParams { action: action.into(), meta: None }).await
    }

    async fn admissible_actions(&mut self) -> Result<Vec<String>, EnvError> {
        if !self.caps.admissible_actions {
            return Err(EnvError::Unsupported(EnvAdmissibleActions::NAME.into()));
        }
        Ok(self.call::<EnvAdmissibleActions>(AdmissibleActionsParams::default()).await?.actions)
    }

    async fn expert_action(&mut self) -> Result<ExpertActionResult, EnvError> {
        if !self.caps.expert_action {
            return Err(EnvError::Unsupported(EnvExpertAction::NAME.into()));
        }
        self.call::<EnvExpertAction>(ExpertActionParams::default()).await
    }
}
