//! `stepwire check-bridge -- <command> [args...]`: runs any bridge through a conformance battery.
//!
//! Each check spawns its own bridge process and has its own timeout; every message the bridge
//! sends is validated against the JSON Schemas generated from the protocol types. The table goes
//! to stdout (or JSON with `--json`), logs to stderr; the exit code is 1 when any check fails.
//!
//! Accepted answers where the protocol leaves a choice: a nonsense action may get -31001 or a
//! normal step result; a request after `shutdown` may get -32003 or -32600; an oversized frame
//! may get -32600 (id null) or a clean close, but never a hang; `seeded-reset` is skipped when
//! the bridge does not announce `seededReset`.

mod checks;
mod schema;
mod session;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use checks::CHECKS;

/// Arguments of `stepwire check-bridge`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckBridgeArgs {
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Seconds each check may take, bridge start-up included.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Run only these checks (repeatable); see the list in the table.
    #[arg(long = "only", value_name = "CHECK")]
    pub only: Vec<String>,
    /// A bridge this repository ships, by name (scienceworld, alfworld, textworld, babyai,
    /// toytext, lockbox, python-example), instead of a command after `--`.
    #[arg(long = "env", value_name = "NAME", conflicts_with = "command")]
    pub known: Option<String>,
    /// Extra environment variable for the bridge, KEY=VALUE (repeatable).
    #[arg(long = "set-env", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub env: Vec<(String, String)>,
    /// Working directory of the bridge.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// The bridge command and its arguments, after `--`.
    #[arg(last = true, required_unless_present = "known", num_args = 1..)]
    pub command: Vec<String>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got `{s}`"))
}

/// The bridge to run, as the sessions need it.
#[derive(Debug, Clone)]
pub struct BridgeSpec {
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub status: Status,
    pub reason: String,
    pub millis: u128,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub command: Vec<String>,
    pub passed: bool,
    pub checks: Vec<CheckResult>,
}

impl Report {
    pub fn exit_code(&self) -> ExitCode {
        if self.passed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(5).max(5);
        let mut out = format!("{:width$}  {:6}  {:>6}  REASON\n", "CHECK", "RESULT", "MS");
        for c in &self.checks {
            let status = match c.status {
                Status::Pass => "pass",
                Status::Fail => "FAIL",
                Status::Skip => "skip",
            };
            let reason = c.reason.replace('\n', " ");
            out.push_str(&format!("{:width$}  {status:6}  {:>6}  {reason}\n", c.name, c.millis));
        }
        let failed = self.checks.iter().filter(|c| c.status == Status::Fail).count();
        out.push_str(&format!("\n{} checks, {failed} failed\n", self.checks.len()));
        out
    }
}

/// The command to check: the one after `--`, or a registry name's.
fn bridge_spec(args: &CheckBridgeArgs) -> anyhow::Result<BridgeSpec> {
    let Some(name) = &args.known else {
        return Ok(BridgeSpec { command: args.command.clone(), env: args.env.clone(), cwd: args.cwd.clone() });
    };
    let resolved = crate::envs::resolve(name)?.command;
    let text = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
    let mut command = vec![text(&resolved.program)];
    command.extend(resolved.args.iter().map(|a| text(a)));
    let mut env: Vec<(String, String)> = resolved.env.iter().map(|(k, v)| (text(k), text(v))).collect();
    env.extend(args.env.iter().cloned());
    Ok(BridgeSpec { command, env, cwd: args.cwd.clone().or(resolved.cwd) })
}

/// Runs the battery (or the `only` subset) against the bridge.
pub async fn run(args: &CheckBridgeArgs) -> anyhow::Result<Report> {
    let schemas = Arc::new(schema::Schemas::new()?);
    let spec = bridge_spec(args)?;
    for name in &args.only {
        anyhow::ensure!(CHECKS.iter().any(|(n, _)| n == name), "no check named `{name}`");
    }
    let per_check = Duration::from_secs(args.timeout.max(1));
    let mut results = Vec::new();
    let mut cannot_initialize = false;
    for (name, what) in CHECKS {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
            continue;
        }
        if cannot_initialize {
            let reason = "`initialize` failed, so nothing after it can be checked".to_string();
            results.push(CheckResult { name: name.to_string(), status: Status::Skip, reason, millis: 0 });
            continue;
        }
        tracing::info!(check = name, "{what}");
        let started = Instant::now();
        let (status, reason) = run_one(name, &spec, schemas.clone(), per_check).await;
        // Every later check starts with `initialize`: a bridge that cannot answer it gets its
        // verdict now instead of the same failure a dozen times.
        cannot_initialize = *name == "initialize" && status == Status::Fail;
        if status == Status::Fail {
            tracing::warn!(check = name, "failed: {reason}");
        }
        let millis = started.elapsed().as_millis();
        results.push(CheckResult { name: name.to_string(), status, reason, millis });
    }
    let passed = results.iter().all(|c| c.status != Status::Fail);
    Ok(Report { command: spec.command.clone(), passed, checks: results })
}

async fn run_one(name: &str, spec: &BridgeSpec, schemas: Arc<schema::Schemas>, limit: Duration) -> (Status, String) {
    let mut session = match session::Session::spawn(spec, schemas) {
        Ok(s) => s,
        Err(e) => return (Status::Fail, format!("{e:#}")),
    };
    let outcome = tokio::time::timeout(limit, checks::run(name, &mut session)).await;
    let (mut status, mut reason) = match outcome {
        Err(_) => {
            let call = session.waiting_for.as_deref().map_or("an answer".to_string(), |m| format!("`{m}`"));
            (Status::Fail, format!("no answer to {call} within {limit:?} (bridge hung?)"))
        }
        Ok(Err(e)) => (Status::Fail, format!("{e:#}")),
        Ok(Ok(checks::Verdict::Pass(why))) => (Status::Pass, why),
        Ok(Ok(checks::Verdict::Skip(why))) => (Status::Skip, why),
    };
    if !session.violations.is_empty() {
        let schema_fault = format!("schema: {}", session.violations.join("; "));
        reason = if status == Status::Fail { format!("{reason}; {schema_fault}") } else { schema_fault };
        status = Status::Fail;
    }
    if status == Status::Fail {
        // Give a dying bridge a moment to finish its traceback.
        let _ = session.wait_exit(Duration::from_millis(300)).await;
        reason.push_str(&session.post_mortem());
    }
    (status, reason)
}

/// The CLI entry point: runs, prints, and returns the exit code.
pub async fn main(args: CheckBridgeArgs) -> ExitCode {
    match run(&args).await {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => eprintln!("error: {e}"),
                }
            } else {
                print!("{}", report.table());
            }
            report.exit_code()
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
