//! The env methods as a [`Service`] behind the shared lifecycle layer: a typed [`Methods`] table
//! (param validation), capability checks, and queueing onto the environment's task.

use serde_json::Value;
use tokio::sync::oneshot;

use super::worker::{EnvCall, Job, JobQueue};
use crate::lifecycle::Service;
use crate::protocol::methods::{EnvAdmissibleActions, EnvExpertAction, EnvReset, EnvStep, EnvTasks, RequestMethod};
use crate::protocol::{
    EnvironmentCapabilities, ErrorCode, InitializeParams, InitializeResult, PeerInfo, RpcError, ServerCapabilities,
    StepParams,
};
use crate::rpc::{BoxFuture, Methods, RequestContext};
use tokio_util::sync::CancellationToken;

pub(crate) struct EnvService {
    methods: Methods<CancellationToken>,
    jobs: JobQueue,
    caps: EnvironmentCapabilities,
}

impl EnvService {
    pub fn new(jobs: JobQueue, caps: EnvironmentCapabilities) -> Self {
        EnvService { methods: env_methods(&jobs), jobs, caps }
    }

    /// Whether the bridge's capabilities announce `method` (the optional env methods).
    fn announced(&self, method: &str) -> bool {
        match method {
            EnvAdmissibleActions::NAME => self.caps.admissible_actions,
            EnvExpertAction::NAME => self.caps.expert_action,
            _ => true,
        }
    }
}

/// The environment plane's methods, typed: each validates its params and queues its call onto
/// the environment's task at once, so calls run in arrival order.
fn env_methods(jobs: &JobQueue) -> Methods<CancellationToken> {
    Methods::new()
        .on_json::<EnvTasks, _, _>(queued(jobs, |_| EnvCall::Tasks))
        .on_json::<EnvReset, _, _>(queued(jobs, EnvCall::Reset))
        .on_json::<EnvStep, _, _>(queued(jobs, |p: StepParams| EnvCall::Step(p.action)))
        .on_json::<EnvAdmissibleActions, _, _>(queued(jobs, |_| EnvCall::Admissible))
        .on_json::<EnvExpertAction, _, _>(queued(jobs, |_| EnvCall::Expert))
}

/// A method function that turns its params into `call` and queues it.
fn queued<P>(
    jobs: &JobQueue,
    call: impl Fn(P) -> EnvCall + Send + Sync + 'static,
) -> impl Fn(P, CancellationToken) -> BoxFuture<Result<Value, RpcError>> + Send + Sync + 'static {
    let jobs = jobs.clone();
    move |params, cancel| enqueue(&jobs, call(params), cancel)
}

fn enqueue(jobs: &JobQueue, call: EnvCall, cancel: CancellationToken) -> BoxFuture<Result<Value, RpcError>> {
    let (reply, rx) = oneshot::channel();
    if jobs.send(Job { call, cancel, reply }).is_err() {
        return Box::pin(async { Err(RpcError::internal("the environment task has stopped")) });
    }
    Box::pin(async move { rx.await.unwrap_or_else(|_| Err(RpcError::internal("the environment task has stopped"))) })
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
        if !self.announced(&ctx.method) {
            let message = format!("`{}` is not announced in this bridge's capabilities", ctx.method);
            return Box::pin(async move { Err(RpcError::new(ErrorCode::METHOD_NOT_FOUND, message)) });
        }
        self.methods.call(&ctx.method, params, ctx.cancel)
    }

    /// Answers `shutdown` only after the env calls already queued are done.
    fn shutdown(&self) -> BoxFuture<()> {
        let done = enqueue(&self.jobs, EnvCall::Barrier, CancellationToken::new());
        Box::pin(async move {
            let _ = done.await;
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::protocol::methods::{MethodKind, Plane, METHODS};

    #[test]
    fn the_harness_serves_every_environment_plane_request_and_nothing_else() {
        let (jobs, _queue) = tokio::sync::mpsc::unbounded_channel();
        let methods = super::env_methods(&jobs);
        for info in METHODS.iter().filter(|m| m.kind == MethodKind::Request) {
            assert_eq!(methods.serves(info.name), info.plane == Plane::Environment, "{}", info.name);
        }
    }
}
