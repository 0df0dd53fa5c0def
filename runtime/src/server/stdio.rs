//! The agent plane on stdin/stdout with LSP framing, behind the shared lifecycle layer.

use serde_json::Value;
use stepwire_sdk::lifecycle::{Lifecycle, Service};
use stepwire_sdk::protocol::{InitializeParams, InitializeResult, RpcError};
use stepwire_sdk::rpc::{BoxFuture, Connection, ConnectionOptions, RequestContext};
use stepwire_sdk::transport::Transport;

use super::service::AgentService;

struct StdioAgent(AgentService);

impl Service for StdioAgent {
    fn initialize(&self, params: InitializeParams) -> Result<InitializeResult, RpcError> {
        tracing::info!(client = %params.client_info.name, "host initialized");
        Ok(self.0.initialize_result())
    }

    fn request(&self, ctx: RequestContext, params: Option<Value>) -> BoxFuture<Result<Value, RpcError>> {
        let service = self.0.clone();
        Box::pin(async move { service.handle(&ctx.method, params, &ctx.cancel).await })
    }
}

/// Serves the agent plane over `transport` until `exit` or end of stream; returns the exit code.
pub async fn serve(service: AgentService, transport: Transport) -> i32 {
    let handler = Lifecycle::new(StdioAgent(service));
    let exit_code = handler.exit_code();
    let options = ConnectionOptions { name: "agent-stdio".into(), request_timeout: None };
    let connection = Connection::start(transport, handler, options);
    let reason = connection.closed().await;
    tracing::debug!("stdio connection ended: {reason}");
    exit_code.get()
}
