//! The LSP-style lifecycle as a layer over any service: `initialize` first (-32002 before it),
//! the protocol version check (-31005), `shutdown` (then -32003 for every request) and `exit`
//! (code 0 after `shutdown`, 1 without). Servers on either plane put their methods behind it.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::protocol::methods::{Exit, Initialize, Initialized, NotificationMethod, RequestMethod, Shutdown};
use crate::protocol::{ErrorCode, InitializeParams, InitializeResult, RpcError, SUPPORTED_PROTOCOL_VERSIONS};
use crate::rpc::{parse_params, to_result, BoxFuture, Handler, NotificationContext, RequestContext};

/// The methods of a server, without the lifecycle.
pub trait Service: Send + Sync + 'static {
    /// Answers a version-checked `initialize`.
    fn initialize(&self, params: InitializeParams) -> Result<InitializeResult, RpcError>;

    /// Serves any request other than `initialize` and `shutdown`, after `initialize`.
    fn request(&self, ctx: RequestContext, params: Option<Value>) -> BoxFuture<Result<Value, RpcError>>;

    /// Completes before `shutdown` is answered: finish work in flight here.
    fn shutdown(&self) -> BoxFuture<()> {
        Box::pin(async {})
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Uninitialized,
    Running,
    ShuttingDown,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    exit_code: Option<i32>,
}

/// A [`Handler`] that runs the lifecycle and hands the rest to a [`Service`].
pub struct Lifecycle<S> {
    service: S,
    state: Arc<Mutex<State>>,
}

/// Reads the exit code the client asked for, once the connection has ended.
#[derive(Clone)]
pub struct ExitCode(Arc<Mutex<State>>);

impl ExitCode {
    /// 0 after `shutdown` + `exit`, 1 after `exit` alone. When the client just closed the stream,
    /// 0 if `shutdown` came first and 1 otherwise: a client that vanished mid-session is not a
    /// clean end (the Python SDK's rule too; `tests/sdk-cases/` holds both to it).
    pub fn get(&self) -> i32 {
        self.0.lock().map(|s| s.exit_code.unwrap_or(if s.phase == Phase::ShuttingDown { 0 } else { 1 })).unwrap_or(1)
    }
}

impl<S: Service> Lifecycle<S> {
    pub fn new(service: S) -> Self {
        let state = State { phase: Phase::Uninitialized, exit_code: None };
        Lifecycle { service, state: Arc::new(Mutex::new(state)) }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode(self.state.clone())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn initialize(&self, params: Option<Value>) -> Result<Value, RpcError> {
        let params = parse_initialize(params)?;
        let mut state = self.state();
        if state.phase != Phase::Uninitialized {
            return Err(RpcError::invalid_request("`initialize` was already called"));
        }
        let result = self.service.initialize(params)?;
        state.phase = Phase::Running;
        to_result(result)
    }
}

/// Reads `initialize` params and checks the protocol version (-32602, -31005): for servers that
/// answer `initialize` without this layer, such as the stateless network listener.
pub fn parse_initialize(params: Option<Value>) -> Result<InitializeParams, RpcError> {
    let params: InitializeParams = parse_params(Initialize::NAME, params)?;
    if !SUPPORTED_PROTOCOL_VERSIONS.contains(&params.protocol_version) {
        return Err(RpcError::unsupported_version(params.protocol_version));
    }
    Ok(params)
}

fn ready(result: Result<Value, RpcError>) -> BoxFuture<Result<Value, RpcError>> {
    Box::pin(async move { result })
}

impl<S: Service> Handler for Lifecycle<S> {
    fn request(&self, ctx: RequestContext, params: Option<Value>) -> BoxFuture<Result<Value, RpcError>> {
        let phase = self.state().phase;
        match (phase, ctx.method.as_str()) {
            (Phase::ShuttingDown, _) => {
                ready(Err(RpcError::new(ErrorCode::SHUTTING_DOWN, "shutting down: only `exit` is accepted now")))
            }
            (_, Initialize::NAME) => ready(self.initialize(params)),
            (Phase::Uninitialized, method) => ready(Err(RpcError::new(
                ErrorCode::SERVER_NOT_INITIALIZED,
                format!("`{method}` before `initialize`: send `initialize` first"),
            ))),
            (Phase::Running, Shutdown::NAME) => {
                self.state().phase = Phase::ShuttingDown;
                let drained = self.service.shutdown();
                Box::pin(async move {
                    drained.await;
                    Ok(Value::Null)
                })
            }
            (Phase::Running, _) => self.service.request(ctx, params),
        }
    }

    fn notification(&self, ctx: NotificationContext, method: &str, _: Option<Value>) -> BoxFuture<()> {
        match method {
            Initialized::NAME => tracing::debug!("client says initialized"),
            Exit::NAME => {
                let mut state = self.state();
                let code = if state.phase == Phase::ShuttingDown { 0 } else { 1 };
                state.exit_code = Some(code);
                tracing::debug!(code, "exit");
                ctx.connection.close();
            }
            _ => tracing::debug!(method, "notification ignored"),
        }
        Box::pin(async {})
    }
}
