//! `stepwire serve`: the agent server over stdio or the network.

use std::net::SocketAddr;
use std::process::ExitCode;

use crate::policies::{self, ModelOptions};
use crate::server::{network, service::AgentService, stdio};

/// Serve the agent plane (agent/plan, agent/act, agent/progress, agent/step) to hosts.
///
/// With --stdio the host spawns stepwire and speaks JSON-RPC with LSP framing on its stdin and
/// stdout (logs go to stderr). With --listen it serves WebSocket and HTTP on one port. The policy
/// is loaded once and shared by every connection.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Serve on stdin/stdout (LSP base-protocol framing).
    #[arg(long, conflicts_with = "listen", required_unless_present = "listen")]
    pub stdio: bool,
    /// Serve WebSocket and HTTP on this address, e.g. 127.0.0.1:7420 (port 0 picks one and
    /// prints it on stderr).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Require `Authorization: Bearer <token>` on the network listener.
    #[arg(long, env = "STEPWIRE_TOKEN", requires = "listen")]
    pub token: Option<String>,
    /// `rules` or a model directory with a stepwire.toml manifest.
    #[arg(long, default_value = "models/tiny-llama")]
    pub policy: String,
    #[command(flatten)]
    pub model: ModelOptions,
    /// Largest message accepted, in bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: u32,
    /// Largest number of simultaneous network connections.
    #[arg(long, default_value_t = 256)]
    pub max_connections: u32,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let loaded = policies::load(&args.policy, args.model)?;
    let service = AgentService::new(loaded.agent, loaded.capabilities);
    if args.stdio {
        let transport =
            stepwire_sdk::transport::Transport::stdio().with_max_message_size(args.max_message_bytes as usize);
        let code = stdio::serve(service, transport).await;
        return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
    }
    let listen = args.listen.expect("clap requires --listen without --stdio");
    let options = network::NetworkOptions {
        listen,
        bearer_token: args.token,
        max_message_bytes: args.max_message_bytes,
        max_connections: args.max_connections,
    };
    let (addr, handle) = network::start(service, options).await?;
    // Hosts and tests read this line to learn the port.
    eprintln!("stepwire: listening on ws://{addr} and http://{addr}");
    tokio::select! {
        _ = handle.clone().stopped() => {}
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("interrupted; stopping the listener");
            let _ = handle.stop();
            handle.stopped().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}
