//! The agent plane on stdin/stdout with LSP framing, behind the shared lifecycle layer.

use stepwire_sdk::lifecycle::Lifecycle;
use stepwire_sdk::rpc::{Connection, ConnectionOptions};
use stepwire_sdk::transport::Transport;

use super::service::{AgentService, Session};

/// Serves the agent plane over `transport` until `exit` or end of stream; returns the exit code.
pub async fn serve(service: AgentService, transport: Transport, max_in_flight: usize) -> i32 {
    let handler = Lifecycle::new(Session::new(service, max_in_flight));
    let exit_code = handler.exit_code();
    let options = ConnectionOptions { name: "agent-stdio".into(), request_timeout: None, ..Default::default() };
    let connection = Connection::start(transport, handler, options);
    let reason = connection.closed().await;
    tracing::debug!("stdio connection ended: {reason}");
    exit_code.get()
}
