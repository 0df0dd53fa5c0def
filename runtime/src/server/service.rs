//! The agent plane's methods, independent of transport: stdio and the network listener both
//! hand every request to [`AgentService::handle`].

use std::sync::Arc;

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use stepwire_sdk::policy::Agent;
use stepwire_sdk::protocol::methods::*;
use stepwire_sdk::protocol::*;
use stepwire_sdk::stepper::{self, ActionChoice};
use tokio_util::sync::CancellationToken;

/// One loaded agent, shared by every connection and session.
#[derive(Clone)]
pub struct AgentService {
    agent: Arc<dyn Agent>,
    capabilities: AgentCapabilities,
}

fn parse<T: DeserializeOwned>(method: &str, params: Option<Value>) -> Result<T, RpcError> {
    serde_json::from_value(params.unwrap_or(Value::Null))
        .map_err(|e| RpcError::invalid_params(format!("{method}: {e}")))
}

fn reply<T: Serialize>(value: T) -> Result<Value, RpcError> {
    serde_json::to_value(value).map_err(|e| RpcError::internal(format!("serialising the result: {e}")))
}

impl AgentService {
    pub fn new(agent: Arc<dyn Agent>, capabilities: AgentCapabilities) -> Self {
        AgentService { agent, capabilities }
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
        reply(self.initialize_result())
    }

    /// Runs one agent-plane method. Lifecycle methods are the transport's business.
    pub async fn handle(
        &self,
        method: &str,
        params: Option<Value>,
        cancel: &CancellationToken,
    ) -> Result<Value, RpcError> {
        let agent = self.agent.as_ref();
        match method {
            AgentPlan::NAME => {
                let p: PlanParams = parse(method, params)?;
                reply(agent.plan(&p, cancel).await?)
            }
            AgentAct::NAME => {
                let p: ActParams = parse(method, params)?;
                reply(agent.act(&p, cancel).await?)
            }
            AgentProgress::NAME => {
                let p: ProgressUpdateParams = parse(method, params)?;
                reply(agent.update(&p, cancel).await?)
            }
            AgentStep::NAME => {
                let p: AgentStepParams = parse(method, params)?;
                let low = ActionChoice::Policy(agent);
                reply(stepper::step(agent, low, agent, &p, cancel).await?)
            }
            other => Err(RpcError::method_not_found(other)),
        }
    }
}
