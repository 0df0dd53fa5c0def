//! The lifecycle (initialize first, shutdown then exit) and the routing of env methods.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::oneshot;

use super::worker::{EnvCall, Job, JobQueue};
use crate::protocol::methods::{
    EnvAdmissibleActions, EnvExpertAction, EnvReset, EnvStep, EnvTasks, Exit, Initialize, Initialized,
    NotificationMethod, RequestMethod, Shutdown,
};
use crate::protocol::{
    EnvironmentCapabilities, ErrorCode, InitializeParams, InitializeResult, PeerInfo, ResetParams, RpcError,
    ServerCapabilities, StepParams, SUPPORTED_PROTOCOL_VERSIONS,
};
use crate::rpc::{parse_params, to_result, BoxFuture, Handler, NotificationContext, RequestContext};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Uninitialized,
    Running,
    ShuttingDown,
}

#[derive(Debug)]
pub(crate) struct Lifecycle {
    phase: Phase,
    /// Set by `exit`: 0 after `shutdown`, 1 otherwise.
    pub exit_code: Option<i32>,
}

pub(crate) struct EnvHandler {
    pub lifecycle: Arc<Mutex<Lifecycle>>,
    pub jobs: JobQueue,
    pub caps: EnvironmentCapabilities,
}

impl EnvHandler {
    pub fn new(caps: EnvironmentCapabilities, jobs: JobQueue) -> Self {
        let lifecycle = Lifecycle { phase: Phase::Uninitialized, exit_code: None };
        EnvHandler { lifecycle: Arc::new(Mutex::new(lifecycle)), jobs, caps }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Lifecycle> {
        self.lifecycle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn initialize(&self, params: Option<Value>) -> Result<Value, RpcError> {
        let params: InitializeParams = parse_params(Initialize::NAME, params)?;
        if !SUPPORTED_PROTOCOL_VERSIONS.contains(&params.protocol_version) {
            return Err(RpcError::unsupported_version(params.protocol_version));
        }
        let mut lifecycle = self.phase();
        if lifecycle.phase != Phase::Uninitialized {
            return Err(RpcError::invalid_request("`initialize` was already called"));
        }
        lifecycle.phase = Phase::Running;
        tracing::info!(client = params.client_info.name, "initialized");
        to_result(InitializeResult {
            protocol_version: params.protocol_version,
            server_info: PeerInfo { name: self.caps.name.clone(), version: None },
            capabilities: ServerCapabilities { environment: Some(self.caps.clone()), agent: None },
            meta: None,
        })
    }

    /// Validates an env method's params and announces, then builds its call.
    fn env_call(&self, method: &str, params: Option<Value>) -> Result<EnvCall, RpcError> {
        let unannounced = || {
            RpcError::new(
                ErrorCode::MethodNotFound,
                format!("`{method}` is not announced in this bridge's capabilities"),
            )
        };
        Ok(match method {
            EnvTasks::NAME => {
                parse_params::<<EnvTasks as RequestMethod>::Params>(method, params)?;
                EnvCall::Tasks
            }
            EnvReset::NAME => EnvCall::Reset(parse_params::<ResetParams>(method, params)?),
            EnvStep::NAME => EnvCall::Step(parse_params::<StepParams>(method, params)?.action),
            EnvAdmissibleActions::NAME => {
                if !self.caps.admissible_actions {
                    return Err(unannounced());
                }
                parse_params::<<EnvAdmissibleActions as RequestMethod>::Params>(method, params)?;
                EnvCall::Admissible
            }
            EnvExpertAction::NAME => {
                if !self.caps.expert_action {
                    return Err(unannounced());
                }
                parse_params::<<EnvExpertAction as RequestMethod>::Params>(method, params)?;
                EnvCall::Expert
            }
            _ => return Err(RpcError::method_not_found(method)),
        })
    }

    fn enqueue(&self, call: EnvCall, ctx: &RequestContext) -> BoxFuture<Result<Value, RpcError>> {
        let (reply, rx) = oneshot::channel();
        let job = Job { call, cancel: ctx.cancel.clone(), reply };
        if self.jobs.send(job).is_err() {
            return Box::pin(async { Err(RpcError::internal("the environment task has stopped")) });
        }
        Box::pin(
            async move { rx.await.unwrap_or_else(|_| Err(RpcError::internal("the environment task has stopped"))) },
        )
    }
}

fn ready(result: Result<Value, RpcError>) -> BoxFuture<Result<Value, RpcError>> {
    Box::pin(async move { result })
}

impl Handler for EnvHandler {
    fn request(&self, ctx: RequestContext, params: Option<Value>) -> BoxFuture<Result<Value, RpcError>> {
        let phase = self.phase().phase;
        let method = ctx.method.as_str();
        match (phase, method) {
            (Phase::ShuttingDown, _) => ready(Err(RpcError::new(
                ErrorCode::ShuttingDown,
                "the bridge is shutting down; only `exit` is accepted",
            ))),
            (_, Initialize::NAME) => ready(self.initialize(params)),
            (Phase::Uninitialized, _) => {
                ready(Err(RpcError::new(ErrorCode::ServerNotInitialized, format!("`{method}` before `initialize`"))))
            }
            (Phase::Running, Shutdown::NAME) => {
                self.phase().phase = Phase::ShuttingDown;
                // Answer only after the env calls already queued are done.
                self.enqueue(EnvCall::Barrier, &ctx)
            }
            (Phase::Running, _) => match self.env_call(method, params) {
                Ok(call) => self.enqueue(call, &ctx),
                Err(e) => ready(Err(e)),
            },
        }
    }

    fn notification(&self, ctx: NotificationContext, method: &str, _: Option<Value>) -> BoxFuture<()> {
        match method {
            Initialized::NAME => tracing::debug!("client says initialized"),
            Exit::NAME => {
                let mut lifecycle = self.phase();
                let code = if lifecycle.phase == Phase::ShuttingDown { 0 } else { 1 };
                lifecycle.exit_code = Some(code);
                tracing::info!(code, "exit");
                ctx.connection.close();
            }
            _ => tracing::debug!(method, "notification ignored"),
        }
        Box::pin(async {})
    }
}
