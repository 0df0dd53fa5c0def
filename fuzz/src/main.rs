//! `stepwire-fuzz`: runs the fuzz targets for a number of inputs or a time and reports.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use stepwire_fuzz::runner::{self, Budget};
use stepwire_fuzz::targets;

/// Fuzz what stepwire reads from peers and files.
///
/// Targets: frame (the LSP frame decoder, input split into reads of any size), message
/// (JSON-RPC bodies of both planes into every protocol type), manifest (stepwire.toml),
/// record (recordings as --resume reads them). Inputs are the repository's seeds (schema
/// examples, manifests, recordings, fuzz/corpus/) with random edits, or random bytes. A failing
/// input is shrunk and printed; a hang (no input done in 10 s) exits with code 3.
///
/// Examples:
///   stepwire-fuzz --execs 5000000 --target frame --target message
///   stepwire-fuzz --seconds 60
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Targets to run (repeatable); all when none is named.
    #[arg(long = "target", value_name = "NAME")]
    targets: Vec<String>,
    /// Inputs per target.
    #[arg(long, conflicts_with = "seconds")]
    execs: Option<u64>,
    /// Seconds per target.
    #[arg(long)]
    seconds: Option<f64>,
    /// Seed of the input generator (runs repeat exactly).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Peak memory allowed, in MiB: over it the run fails.
    #[arg(long, default_value_t = 512)]
    max_rss_mib: u64,
    /// Print one JSON object per target on stdout.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let budget = match (args.execs, args.seconds) {
        (Some(n), _) => Budget::Executions(n),
        (None, Some(s)) => Budget::Time(Duration::from_secs_f64(s)),
        (None, None) => Budget::Executions(100_000),
    };
    let mut all = targets::all();
    if !args.targets.is_empty() {
        let known: Vec<&str> = all.iter().map(|t| t.name).collect();
        if let Some(bad) = args.targets.iter().find(|t| !known.contains(&t.as_str())) {
            eprintln!("stepwire-fuzz: unknown target {bad:?}; targets: {}", known.join(", "));
            return ExitCode::from(2);
        }
        all.retain(|t| args.targets.iter().any(|n| n == t.name));
    }
    let mut failed = false;
    for target in &all {
        let bar = indicatif::ProgressBar::new(match budget {
            Budget::Executions(n) => n,
            Budget::Time(_) => 0,
        });
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg:>10} {bar:30} {pos}/{len} inputs, {per_sec}, {elapsed}")
                .expect("static template"),
        );
        bar.set_message(target.name);
        let report = runner::run(target, budget, args.seed, &|n| bar.set_position(n));
        bar.finish_and_clear();
        let over_memory = report.peak_rss_kib > args.max_rss_mib * 1024;
        let ok = report.failure.is_none() && !over_memory;
        failed |= !ok;
        let per_s = report.executions as f64 / report.seconds.max(1e-9);
        if args.json {
            let line = serde_json::json!({
                "target": report.target, "executions": report.executions, "seconds": report.seconds,
                "execsPerSecond": per_s, "peakRssKib": report.peak_rss_kib, "crashes": u8::from(report.failure.is_some()),
                "hangs": 0, "failure": report.failure, "ok": ok,
            });
            println!("{line}");
        } else {
            println!(
                "{:<9} {:>11} inputs in {:>7.1} s ({:>8.0}/s), peak RSS {:>6} KiB: {}",
                report.target,
                report.executions,
                report.seconds,
                per_s,
                report.peak_rss_kib,
                if ok { "ok".to_string() } else { "FAILED".to_string() }
            );
        }
        if let Some(why) = &report.failure {
            eprintln!("stepwire-fuzz: {} failed: {why}", target.name);
        }
        if over_memory {
            eprintln!(
                "stepwire-fuzz: {} used {} KiB, over --max-rss-mib {}",
                target.name, report.peak_rss_kib, args.max_rss_mib
            );
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
