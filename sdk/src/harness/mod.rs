//! Serves any [`Environment`] on the environment plane, lifecycle included.
//!
//! ```no_run
//! # use stepwire_sdk::environment::Environment;
//! # async fn demo(my_env: impl Environment + 'static) -> std::process::ExitCode {
//! stepwire_sdk::harness::serve_stdio(my_env).await
//! # }
//! ```
//!
//! The author writes the environment; the harness does the rest: `initialize` first (-32002
//! before it), the version check (-31005), capabilities, param validation (-32602), methods not
//! announced (-32601), reset params against the tasks, splits, variation counts and reset options
//! (-31003, -32602; a seed picks variation `seed % count`), episode state (-31006 before a reset
//! or after a crash, -31004 after `done`), `EnvError` to error codes, `$/cancelRequest`, `shutdown` (-32003 for any
//! request after it) and `exit` (code 0 after `shutdown`, 1 without). Env calls run one at a
//! time in arrival order on one task; the connection keeps answering cancels and protocol errors
//! while one runs.

mod builders;
mod episodes;
mod handler;
mod worker;

pub use episodes::DEFAULT_SPLIT;

use std::process::ExitCode;

use crate::environment::Environment;
use crate::lifecycle::Lifecycle;
use crate::rpc::{Connection, ConnectionOptions};
use crate::transport::Transport;

/// How a serve ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOutcome {
    /// The process exit code: from `exit` (0 after `shutdown`, 1 otherwise); 0 when the client
    /// simply closed the stream.
    pub exit_code: i32,
    /// Why the connection ended, for logs.
    pub reason: String,
}

/// Serves `env` over `transport` until `exit` or end of stream.
pub async fn serve<E: Environment + 'static>(env: E, transport: Transport) -> ServeOutcome {
    let caps = env.capabilities();
    let name = caps.name.clone();
    // Unbounded in type only: every queued job holds one of the connection's reply slots, so at
    // most `REPLY_QUEUE` (64) wait; past that the connection stops reading the peer.
    let (jobs, queue) = tokio::sync::mpsc::unbounded_channel();
    let handler = Lifecycle::new(handler::EnvService::new(jobs, caps));
    let exit_code = handler.exit_code();
    tokio::spawn(worker::run(env, queue));
    let opts = ConnectionOptions { name, request_timeout: None, strict: false };
    let conn = Connection::start(transport, handler, opts);
    let reason = conn.closed().await;
    let exit_code = exit_code.get();
    tracing::debug!(exit_code, "serve ended: {reason}");
    ServeOutcome { exit_code, reason }
}

/// Serves `env` on this process's stdin/stdout, logging to stderr, and returns the exit code
/// for `main` to return:
///
/// ```ignore
/// #[tokio::main]
/// async fn main() -> std::process::ExitCode {
///     stepwire_sdk::harness::serve_stdio(MyEnv::new()).await
/// }
/// ```
///
/// Logging goes to stderr (stdout carries the protocol), filtered by `STEPWIRE_LOG` (default
/// `info`), unless the program installed its own subscriber.
pub async fn serve_stdio<E: Environment + 'static>(env: E) -> ExitCode {
    init_stderr_logging();
    let outcome = serve(env, Transport::stdio()).await;
    ExitCode::from(u8::try_from(outcome.exit_code).unwrap_or(1))
}

/// Installs a stderr log subscriber unless one is set already.
pub fn init_stderr_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STEPWIRE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).try_init();
}
