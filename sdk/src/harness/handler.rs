//! The env methods as a [`Service`] behind the shared lifecycle layer: validation, capability
//! checks, and queueing onto the environment's task.

use serde_json::Value;
use tokio::sync::oneshot;

use super::worker::{EnvCall, Job, JobQueue};
use crate::lifecycle::Service;
use crate::protocol::methods::{EnvAdmissibleActions, EnvExpertAction, EnvReset, EnvStep, EnvTasks, RequestMethod};
use crate::protocol::{
    EnvironmentCapabilities, ErrorCode, InitializeParams, InitializeResult, PeerInfo, ResetParams, RpcError,
    ServerCapabilities, StepParams,
};
use crate::rpc::{parse_params, BoxFuture, RequestContext};

pub(crate) struct EnvService {
    pub jobs: JobQueue,
    pub caps: EnvironmentCapabilities,
}

impl EnvService {
    /// Validates an env method's params and announces, then builds its call.
    fn env_call(&self, method: &str, params: Option<Value>) -> Result<EnvCall, RpcError> {
        let unannounced = || {
            RpcError::new(
                ErrorCode::METHOD_NOT_FOUND,
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

    fn enqueue(
        &self,
        call: EnvCall,
        cancel: tokio_util::sync::CancellationToken,
    ) -> BoxFuture<Result<Value, RpcError>> {
        let (reply, rx) = oneshot::channel();
        let job = Job { call, cancel, reply };
        if self.jobs.send(job).is_err() {
            return Box::pin(async { Err(RpcError::internal("the environment task has stopped")) });
        }
        Box::pin(
            async move { rx.await.unwrap_or_else(|_| Err(RpcError::internal("the environment task has stopped"))) },
        )
    }
}

impl Service for EnvService {
    fn initialize(&self, params: InitializeParams) -> Result<InitializeResult, RpcError> {
        tracing::debug!(client = params.client_info.name, "initialized");
        Ok(InitializeResult {
            protocol_version: params.protocol_version,
            server_info: PeerInfo { name: self.caps.name.clone(), version: None },
            capabilities: ServerCapabilities { environment: Some(self.caps.clone()), agent: None },
            meta: None,
        })
    }

    fn request(&self, ctx: RequestContext, params: Option<Value>) -> BoxFuture<Result<Value, RpcError>> {
        match self.env_call(&ctx.method, params) {
            Ok(call) => self.enqueue(call, ctx.cancel),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    /// Answers `shutdown` only after the env calls already queued are done.
    fn shutdown(&self) -> BoxFuture<()> {
        let done = self.enqueue(EnvCall::Barrier, tokio_util::sync::CancellationToken::new());
        Box::pin(async move {
            let _ = done.await;
        })
    }
}
