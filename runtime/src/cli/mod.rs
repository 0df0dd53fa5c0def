//! Command-line interface: one module per subcommand, each parsing its own arguments.

pub mod log_writer;
pub mod report;
pub mod run;
pub mod schema;
pub mod serve;

use clap::{Parser, Subcommand};

/// stepwire: run hierarchical (STEP-HRL) LLM agents against real text environments.
///
/// Hosts talk to `stepwire serve` over JSON-RPC; environments are bridge processes that speak the
/// environment plane on stdio; policies are ONNX exports run with ONNX Runtime.
#[derive(Debug, Parser)]
#[command(name = "stepwire", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write (or check) the JSON Schemas generated from the protocol types.
    Schema(schema::SchemaArgs),
    /// Serve the agent plane to hosts over stdio or WebSocket/HTTP.
    Serve(serve::ServeArgs),
    /// Play episodes of an environment with a policy; record them and report the results.
    Run(Box<run::RunArgs>),
    /// Check that a bridge speaks the environment plane correctly (run it in your CI).
    CheckBridge(crate::check_bridge::CheckBridgeArgs),
    /// Draw charts of recordings (success, scores, steps, prompt tokens per step) as an HTML page and PNGs
    ///
    /// Charts and tables of recorded episodes: success rate per task and split, score and step
    /// distributions, and prompt tokens per call against the step index for each policy level
    /// (where STEP-HRL's prompts stay flat and a full-history policy's grow).
    ///
    /// Each recording is one policy (a file written by `stepwire run --record`); give several to
    /// compare them. Writes OUT/index.html (self-contained: inline SVG and CSS, no scripts, opens
    /// from a file without network), OUT/summary.json (the numbers drawn) and OUT/<chart>.png for
    /// each chart (text set in a system font). A torn last line (a run killed mid-write) is skipped
    /// with a warning naming it; any other line that is not a record is an error.
    Report(report::ReportArgs),
}

/// Logs go to stderr, always: stdout may carry protocol.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("STEPWIRE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(log_writer::StderrAroundBar::default)
        .with_ansi(ansi)
        .try_init();
}

pub async fn main_with(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Schema(args) => schema::run(args),
        Command::Run(args) => run::run(*args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::CheckBridge(args) => Ok(crate::check_bridge::main(args).await),
        Command::Report(args) => report::run(args),
    }
}
