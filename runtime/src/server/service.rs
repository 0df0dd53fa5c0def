//! The agent plane's methods, independent of transport: stdio and the network listener both
//! hand every request to [`AgentService::handle`].

use std::sync::Arc;

use serde_json::Value;
use stepwire_sdk::policy::Agent;
use stepwire_sdk::protocol::methods::*;
use stepwire_sdk::protocol::*;
use stepwire_sdk::rpc::{to_result, Methods};
use stepwire_sdk::stepper::{self, ActionChoice};
use tokio_util::sync::CancellationToken;

/// One loaded agent, shared by every connection and session.
#[derive(Clone)]
pub struct AgentService {
    agent: Arc<dyn Agent>,
    methods: Arc<Methods<AgentCall>>,
    capabilities: AgentCapabilities,
}

/// What an agent-plane method gets besides its params.
type AgentCall = (Arc<dyn Agent>, CancellationToken);

impl AgentService {
    pub fn new(agent: Arc<dyn Agent>, capabilities: AgentCapabilities) -> Self {
        AgentService { agent, methods: Arc::new(agent_methods()), capabilities }
    }

    pub fn initialize_result(&self) -> InitializeResult {
        InitializeResult {
            protocol_version: PROTOCOL_VERSION,
            server_info: PeerInfo { name: "stepwire".into(), version: Some(env!("CARGO_PKG_VERSION").into()) },
            capabilities: ServerCapabilities { environment: None, agent: Some(self.capabilities.clone()) },
            meta: None,
        }
    }

    /// Answers `initialize` on the network listener, with the same checks as the lifecycle layer.
    pub fn initialize(&self, params: Option<Value>) -> Result<Value, RpcError> {
        let p = stepwire_sdk::lifecycle::parse_initialize(params)?;
        tracing::info!(client = %p.client_info.name, "host initialized");
        to_result(self.initialize_result())
    }

    /// Runs one agent-plane method. Lifecycle methods are the transport's business.
    pub async fn handle(
        &self,
        method: &str,
        params: Option<Value>,
        cancel: &CancellationToken,
    ) -> Result<Value, RpcError> {
        self.methods.call(method, params, (self.agent.clone(), cancel.clone())).await
    }
}

/// The agent plane's methods, typed: one entry per method of the `methods!` table's agent plane.
fn agent_methods() -> Methods<AgentCall> {
    Methods::new()
        .on::<AgentPlan, _, _>(|p, (agent, cancel): AgentCall| async move { Ok(agent.plan(&p, &cancel).await?) })
        .on::<AgentAct, _, _>(|p, (agent, cancel): AgentCall| async move { Ok(agent.act(&p, &cancel).await?) })
        .on::<AgentProgress, _, _>(|p, (agent, cancel): AgentCall| async move { Ok(agent.update(&p, &cancel).await?) })
        .on::<AgentStep, _, _>(|p, (agent, cancel): AgentCall| async move {
            let agent = agent.as_ref();
            Ok(stepper::step(agent, ActionChoice::Policy(agent), agent, &p, &cancel).await?)
        })
}

/// One host's connection to the service, behind the SDK's lifecycle layer (stdio and WebSocket
/// alike): at most `max_in_flight` requests run at once; more get -31012 at once, so a host that
/// floods requests cannot queue unbounded work.
pub struct Session {
    service: AgentService,
    in_flight: Arc<tokio::sync::Semaphore>,
    max_in_flight: usize,
}

impl Session {
    pub fn new(service: AgentService, max_in_flight: usize) -> Self {
        let max_in_flight = max_in_flight.max(1);
        Session { service, in_flight: Arc::new(tokio::sync::Semaphore::new(max_in_flight)), max_in_flight }
    }

    /// Requests running now (an idle connection has none).
    pub fn in_flight(&self) -> InFlight {
        InFlight { semaphore: self.in_flight.clone(), max: self.max_in_flight }
    }
}

/// A view of how many requests a [`Session`] is running.
#[derive(Clone)]
pub struct InFlight {
    semaphore: Arc<tokio::sync::Semaphore>,
    max: usize,
}

impl InFlight {
    pub fn count(&self) -> usize {
        self.max - self.semaphore.available_permits()
    }
}

impl stepwire_sdk::lifecycle::Service for Session {
    fn initialize(&self, params: InitializeParams) -> Result<InitializeResult, RpcError> {
        tracing::info!(client = %params.client_info.name, "host initialized");
        Ok(self.service.initialize_result())
    }

    fn request(
        &self,
        ctx: stepwire_sdk::rpc::RequestContext,
        params: Option<Value>,
    ) -> stepwire_sdk::rpc::BoxFuture<Result<Value, RpcError>> {
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            let message = format!(
                "more than {} requests in flight on this connection: wait for answers (or raise --max-in-flight)",
                self.max_in_flight
            );
            return Box::pin(async move { Err(RpcError::new(ErrorCode::LIMIT_EXCEEDED, message)) });
        };
        let service = self.service.clone();
        Box::pin(async move {
            let result = service.handle(&ctx.method, params, &ctx.cancel).await;
            drop(permit);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use stepwire_sdk::lifecycle::Service;
    use stepwire_sdk::rpc::{Connection, ConnectionOptions, RequestContext};
    use stepwire_sdk::transport::Transport;

    use super::*;
    use crate::server::test_agent::HeldAgent;

    #[test]
    fn the_service_serves_every_agent_plane_request_and_nothing_else() {
        use stepwire_sdk::protocol::methods::{MethodKind, Plane, METHODS};
        let methods = agent_methods();
        for info in METHODS.iter().filter(|m| m.kind == MethodKind::Request) {
            assert_eq!(methods.serves(info.name), info.plane == Plane::Agent, "{}", info.name);
        }
    }

    #[tokio::test]
    async fn a_session_runs_at_most_max_in_flight_requests() {
        let agent = Arc::new(HeldAgent::default());
        let service = AgentService::new(agent.clone(), AgentCapabilities::default());
        let session = Session::new(service, 2);
        let (a, _b) = Transport::pair();
        let connection = Connection::start_client(a, ConnectionOptions::default());
        let params = serde_json::json!({"subtask": "s", "observation": {"text": "t"}});
        let call = |id: i64| {
            let ctx = RequestContext {
                id: id.into(),
                method: AgentAct::NAME.into(),
                cancel: CancellationToken::new(),
                connection: connection.clone(),
            };
            session.request(ctx, Some(params.clone()))
        };
        let first = tokio::spawn(call(1));
        let second = tokio::spawn(call(2));
        while agent.started.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(session.in_flight().count(), 2);
        let third = call(3).await.unwrap_err();
        assert_eq!(third.code, ErrorCode::LIMIT_EXCEEDED, "{third}");
        assert!(third.message.contains("--max-in-flight"), "{third}");
        agent.release.notify_waiters();
        assert!(first.await.unwrap().is_ok() && second.await.unwrap().is_ok());
        assert_eq!(session.in_flight().count(), 0, "permits come back when answers go out");
    }
}
