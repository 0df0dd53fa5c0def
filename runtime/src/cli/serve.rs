//! `stepwire serve`: the agent server over stdio or the network.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::policies::{self, ModelOptions};
use crate::server::network::{self, ConnectionLimits, NetworkOptions};
use crate::server::{service::AgentService, stdio};

/// Serve the agent plane (agent/plan, agent/act, agent/progress, agent/step) to hosts.
///
/// With --stdio the host spawns stepwire and speaks JSON-RPC with LSP framing on its stdin and
/// stdout (logs go to stderr). With --listen it serves WebSocket and HTTP on one port. The policy
/// is loaded once and shared by every connection.
///
/// The listener admits a request only when its Host is an IP address, localhost or an
/// --allow-host name (against DNS rebinding), its Origin (sent by browsers) is an --allow-origin,
/// and, when a token is set, it carries `Authorization: Bearer <token>`. Beyond loopback a token
/// is required; give it in STEPWIRE_TOKEN or a file (--token-file), never on the command line,
/// where other users see it in `ps`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Serve on stdin/stdout (LSP base-protocol framing).
    #[arg(long, conflicts_with = "listen", required_unless_present = "listen")]
    pub stdio: bool,
    /// Serve WebSocket and HTTP on this address, e.g. 127.0.0.1:7420 (port 0 picks one and
    /// prints it on stderr). An address beyond loopback needs a token.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// A file holding the bearer token the listener requires (surrounding whitespace ignored);
    /// the STEPWIRE_TOKEN environment variable does the same.
    #[arg(long, requires = "listen", value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// A host name accepted in the Host header besides IP addresses and localhost (repeatable;
    /// `*` accepts any, which re-opens DNS rebinding to a server without a token).
    #[arg(long = "allow-host", value_name = "NAME", requires = "listen")]
    pub allow_hosts: Vec<String>,
    /// A browser origin allowed to connect, e.g. http://localhost:3000 (repeatable; `*` any).
    /// Requests without an Origin header (anything but a browser) are not affected.
    #[arg(long = "allow-origin", value_name = "ORIGIN", requires = "listen")]
    pub allow_origins: Vec<String>,
    /// `rules` (first admissible action), `random` (a random admissible action, seeded per request)
    /// or a model directory with a stepwire.toml manifest.
    #[arg(long, default_value = "models/tiny-llama")]
    pub policy: String,
    #[command(flatten)]
    pub model: ModelOptions,
    /// Largest message accepted, in bytes (a frame on stdio, a WebSocket message, a POST body).
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: u32,
    /// Largest number of simultaneous network connections; more get HTTP 503.
    #[arg(long, default_value_t = 256)]
    pub max_connections: u32,
    /// Requests running at once on one connection (stdio or WebSocket); more get -31012.
    #[arg(long, default_value_t = 64)]
    pub max_in_flight: usize,
    /// Seconds a network connection may stay open with no message and no request running.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub idle_timeout: u64,
    /// Seconds a network client has to send a request's headers.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub header_timeout: u64,
}

/// The token from STEPWIRE_TOKEN or --token-file (a file wins; both empty means none).
fn bearer_token(args: &ServeArgs) -> anyhow::Result<Option<String>> {
    let token = match &args.token_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("--token-file {}: {e}", path.display()))?
            .trim()
            .to_string(),
        None => std::env::var("STEPWIRE_TOKEN").unwrap_or_default().trim().to_string(),
    };
    if token.is_empty() && args.token_file.is_some() {
        anyhow::bail!("--token-file is empty: write the token into it");
    }
    Ok((!token.is_empty()).then_some(token))
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let token = if args.listen.is_some() { bearer_token(&args)? } else { None };
    let loaded = policies::load(&args.policy, args.model)?;
    let service = AgentService::new(loaded.agent, loaded.capabilities);
    if args.stdio {
        let transport =
            stepwire_sdk::transport::Transport::stdio().with_max_message_size(args.max_message_bytes as usize);
        let code = stdio::serve(service, transport, args.max_in_flight).await;
        return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
    }
    let listen = args.listen.expect("clap requires --listen without --stdio");
    let options = NetworkOptions {
        listen,
        bearer_token: token,
        allowed_hosts: args.allow_hosts,
        allowed_origins: args.allow_origins,
        max_connections: args.max_connections as usize,
        connection: ConnectionLimits {
            max_message_bytes: args.max_message_bytes as usize,
            max_in_flight: args.max_in_flight,
            idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
        },
        header_timeout: Duration::from_secs(args.header_timeout.max(1)),
    };
    let (addr, handle) = network::start(service, options).await?;
    // Hosts and tests read this line to learn the port.
    eprintln!("stepwire: listening on ws://{addr} and http://{addr}");
    tokio::select! {
        _ = handle.stopped() => {}
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("interrupted; stopping the listener");
            handle.stop();
            handle.stopped().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}
