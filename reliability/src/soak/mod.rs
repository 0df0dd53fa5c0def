//! `soak`: many concurrent sessions against one target for a fixed time, then the verdict on
//! its answers, latency, memory, descriptors and threads.
//!
//! The shape is the same for every target: start it, run one priming session (one-time lazy
//! setup such as a signal pipe is not a leak), take the baseline, run the load while sampling
//! RSS once a second, stop the sessions, wait 2 s, take the final reading.

pub mod bridge;
pub mod messages;
pub mod network;
pub mod server;
pub mod stdio;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::procfs::{self, Resources};
use crate::stats::{rss_around, Percentiles, RssSample, RssSampler, Tally, TallyInner};
use crate::verdict::Criteria;

/// What the soak drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// `stepwire serve --listen`: WebSocket sessions and HTTP POSTs.
    Network,
    /// `stepwire serve --stdio`: concurrent requests on one connection.
    Stdio,
    /// The SDK's `BridgeClient` against the lockbox bridge, in this process.
    Bridge,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Network => "network",
            Target::Stdio => "stdio",
            Target::Bridge => "bridge",
        }
    }
}

/// Run many concurrent sessions against a stepwire target and check that nothing drifts.
///
/// network: starts `stepwire serve --listen 127.0.0.1:0`; each session loops over a random mix
/// of agent/step, a step cancelled at once with $/cancelRequest, a connection dropped
/// mid-request, a message over --max-message-bytes (answered -32600, then closed), invalid params
/// (-32602) and a plain HTTP POST step. stdio: one `stepwire serve --stdio` child, the sessions
/// share its one connection (steps, cancels, invalid params). bridge: the SDK's BridgeClient
/// spawning the lockbox bridge: spawn, reset, steps, shutdown, with some bridges dropped or
/// SIGKILLed mid-episode.
///
/// Pass criteria: 0 unexpected answers; RSS at the end within 5 % of RSS at the end of warm-up
/// (the first 20 % of the duration, at least 5 s; each the median of the samples of the 5 s
/// before that point, the first second of the load left out); open descriptors and threads 2 s after the sessions end no more
/// than before they started; for bridge, no bridge process left. Progress goes to stderr, the
/// report to stdout; the exit status is 1 when a criterion fails.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "soak", version)]
pub struct SoakArgs {
    #[arg(long, value_enum)]
    pub target: Target,
    /// How long the sessions run, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub duration: u64,
    /// Concurrent sessions (network: WebSockets; stdio: tasks on the one connection; bridge:
    /// workers each owning one bridge at a time).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub sessions: usize,
    /// The server's policy: `rules` or a model directory such as models/tiny-llama.
    #[arg(long, default_value = "rules")]
    pub policy: String,
    /// The server's --max-message-bytes; the oversized requests are just above it.
    #[arg(long, value_name = "BYTES", default_value_t = 65536)]
    pub max_message_bytes: usize,
    /// Seed of the random mix (each session derives its own).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The stepwire binary (default: beside this one, target/<profile>/stepwire).
    #[arg(long, value_name = "PATH")]
    pub stepwire: Option<PathBuf>,
    /// The lockbox bridge binary (default: beside this one).
    #[arg(long, value_name = "PATH")]
    pub bridge: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Largest accepted growth of RSS from the end of warm-up to the end, in percent.
pub const RSS_GROWTH_LIMIT_PCT: f64 = 5.0;
/// Seconds of samples whose median is "the RSS" at the end of warm-up and at the end.
pub const RSS_WINDOW_S: f64 = 5.0;
/// How long after the sessions end descriptors and threads are counted again.
pub const SETTLE: Duration = Duration::from_secs(2);
/// How long the report goes on watching for descriptors and threads to come back, when they
/// have not at [`SETTLE`] (a figure for the investigation; the criterion is at [`SETTLE`]).
pub const BACK_WAIT: Duration = Duration::from_secs(30);

/// The figures of one soak.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SoakReport {
    pub target: Target,
    pub policy: Option<String>,
    pub sessions: usize,
    pub duration_s: u64,
    pub wall_s: f64,
    pub measured_pid: u32,
    #[serde(flatten)]
    pub tally: TallyInner,
    pub latency_ms: BTreeMap<String, Percentiles>,
    pub rss: RssFigures,
    pub before: Resources,
    pub after: Resources,
    /// Seconds after the load when descriptors and threads were back to their start values.
    pub back_after_s: Option<f64>,
    /// Target-specific findings (stray processes, exit status).
    pub notes: BTreeMap<String, serde_json::Value>,
    pub criteria: Criteria,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RssFigures {
    pub warmup_end_s: f64,
    pub warm_kib: u64,
    pub end_kib: u64,
    pub growth_pct: f64,
    pub min_kib: u64,
    pub max_kib: u64,
    pub samples: Vec<RssSample>,
}

/// What [`measure`] saw around the load.
pub struct Measured {
    pub before: Resources,
    pub after: Resources,
    /// Seconds after the load when descriptors and threads were back to their start values.
    pub back_after_s: Option<f64>,
    pub rss: RssFigures,
}

/// The end of warm-up: the first 20 % of the duration, at least 5 s (never past the end).
pub fn warmup(duration: Duration) -> Duration {
    duration.mul_f64(0.2).max(Duration::from_secs(5)).min(duration)
}

/// Samples `pid` while `load` runs until the deadline it is given, then reads its resources
/// again [`SETTLE`] after the load returned.
pub async fn measure<F, Fut>(pid: u32, duration: Duration, load: F) -> anyhow::Result<Measured>
where
    F: FnOnce(Instant) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    // The sampler first: when the measured process is this one, its thread is in both counts.
    let sampler = RssSampler::start(pid);
    let before = procfs::resources(pid).ok_or_else(|| anyhow::anyhow!("process {pid} is gone before the load"))?;
    tracing::info!(pid, ?before, "baseline taken; load starts");
    let load_started = sampler.elapsed_s();
    load(Instant::now() + duration).await?;
    let load_end_s = sampler.elapsed_s();
    tracing::info!("sessions closed after {:.1} s; settling {} s", load_end_s - load_started, SETTLE.as_secs());
    tokio::time::sleep(SETTLE).await;
    let after = procfs::resources(pid).ok_or_else(|| anyhow::anyhow!("process {pid} is gone after the load"))?;
    let back_after_s = back_to_start(pid, before, load_end_s, &sampler).await;
    let samples = sampler.stop();
    let warmup_end_s = load_started + warmup(duration).as_secs_f64();
    // The median of the 5 s before each point, so a momentary peak is no trend; never the
    // first second of the load, which still shows the idle process.
    let window = RSS_WINDOW_S.min(warmup_end_s - load_started - 1.0).max(1.0);
    let warm_kib = rss_around(&samples, warmup_end_s, window).unwrap_or(before.rss_kib);
    let end_kib = rss_around(&samples, load_end_s, window).unwrap_or(warm_kib);
    let during: Vec<u64> =
        samples.iter().filter(|s| s.at_s >= load_started && s.at_s <= load_end_s).map(|s| s.rss_kib).collect();
    let rss = RssFigures {
        warmup_end_s: warmup_end_s - load_started,
        warm_kib,
        end_kib,
        growth_pct: (end_kib as f64 - warm_kib as f64) / warm_kib.max(1) as f64 * 100.0,
        min_kib: during.iter().copied().min().unwrap_or(0),
        max_kib: during.iter().copied().max().unwrap_or(0),
        samples,
    };
    Ok(Measured { before, after, back_after_s, rss })
}

/// For the report when the 2 s reading is over the start: how long after the load descriptors
/// and threads did come back (polled up to [`BACK_WAIT`]), `None` if they did not.
async fn back_to_start(pid: u32, before: Resources, load_end_s: f64, sampler: &RssSampler) -> Option<f64> {
    let deadline = Instant::now() + BACK_WAIT;
    loop {
        let now = procfs::resources(pid)?;
        if now.fds <= before.fds && now.threads <= before.threads {
            return Some(sampler.elapsed_s() - load_end_s);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs the soak `args` asks for.
pub async fn run(args: SoakArgs) -> anyhow::Result<SoakReport> {
    anyhow::ensure!(args.sessions > 0, "--sessions must be at least 1");
    anyhow::ensure!(args.duration > 0, "--duration must be at least 1 s");
    let started = Instant::now();
    let tally = Arc::new(Tally::default());
    let outcome = match args.target {
        Target::Network => network::soak(&args, tally.clone()).await?,
        Target::Stdio => stdio::soak(&args, tally.clone()).await?,
        Target::Bridge => bridge::soak(&args, tally.clone()).await?,
    };
    Ok(report(&args, started.elapsed(), &tally, outcome))
}

/// What a target hands back: the measurement and its own checks and notes.
pub struct TargetOutcome {
    pub pid: u32,
    pub measured: Measured,
    pub criteria: Criteria,
    pub notes: BTreeMap<String, serde_json::Value>,
}

fn report(args: &SoakArgs, wall: Duration, tally: &Tally, outcome: TargetOutcome) -> SoakReport {
    let t = tally.snapshot();
    let latency_ms = t.latencies.iter().map(|(k, h)| (k.clone(), h.percentiles())).collect();
    let Measured { before, after, back_after_s, rss } = outcome.measured;
    let mut criteria = Criteria::default();
    criteria.check("load ran", t.requests > 0, format!("{} requests", t.requests));
    criteria.check("0 unexpected errors", t.unexpected == 0, format!("{} unexpected", t.unexpected));
    criteria.check(
        "RSS flat after warm-up (growth < 5 %)",
        rss.growth_pct < RSS_GROWTH_LIMIT_PCT,
        format!("{} KiB -> {} KiB ({:+.2} %)", rss.warm_kib, rss.end_kib, rss.growth_pct),
    );
    criteria.check(
        "file descriptors back to start",
        after.fds <= before.fds,
        format!("{} before, {} {} s after", before.fds, after.fds, SETTLE.as_secs()),
    );
    criteria.check(
        "threads back to start",
        after.threads <= before.threads,
        format!("{} before, {} {} s after", before.threads, after.threads, SETTLE.as_secs()),
    );
    for c in outcome.criteria.iter() {
        criteria.check(&c.name, c.passed, c.measured.clone());
    }
    SoakReport {
        target: args.target,
        policy: (args.target != Target::Bridge).then(|| args.policy.clone()),
        sessions: args.sessions,
        duration_s: args.duration,
        wall_s: wall.as_secs_f64(),
        measured_pid: outcome.pid,
        tally: t,
        latency_ms,
        rss,
        before,
        after,
        back_after_s,
        notes: outcome.notes,
        criteria,
    }
}

impl SoakReport {
    /// The human-readable report.
    fn text_report(&self) -> String {
        let mut s = format!(
            "soak {}: {} sessions for {} s (wall {:.1} s){}, measured pid {}\n",
            self.target.name(),
            self.sessions,
            self.duration_s,
            self.wall_s,
            self.policy.as_ref().map(|p| format!(", policy {p}")).unwrap_or_default(),
            self.measured_pid
        );
        let what = match self.target {
            Target::Bridge => "episodes (one bridge each)",
            _ => "requests",
        };
        s.push_str(&format!("{what}: {}\n", self.tally.requests));
        let answers: Vec<String> = self.tally.answers.iter().map(|(k, v)| format!("{k} {v}")).collect();
        s.push_str(&format!("answers: {}\n", answers.join(", ")));
        s.push_str(&format!("unexpected errors: {}\n", self.tally.unexpected));
        for e in &self.tally.unexpected_examples {
            s.push_str(&format!("  e.g. {e}\n"));
        }
        for (kind, p) in &self.latency_ms {
            s.push_str(&format!(
                "latency {kind} ms: p50 {:.2}, p95 {:.2}, p99 {:.2}, max {:.2} (n = {})\n",
                p.p50, p.p95, p.p99, p.max, p.count
            ));
        }
        let r = &self.rss;
        s.push_str(&format!(
            "RSS KiB: {} at end of warm-up ({:.0} s), {} at end ({:+.2} %); {} .. {} over {} samples\n",
            r.warm_kib,
            r.warmup_end_s,
            r.end_kib,
            r.growth_pct,
            r.min_kib,
            r.max_kib,
            r.samples.len()
        ));
        s.push_str(&format!(
            "fds {} -> {}, threads {} -> {} (before the sessions -> {} s after)\n",
            self.before.fds,
            self.after.fds,
            self.before.threads,
            self.after.threads,
            SETTLE.as_secs()
        ));
        match self.back_after_s {
            Some(t) => s.push_str(&format!("fds and threads back to their start values {t:.1} s after the load\n")),
            None => {
                s.push_str(&format!("fds and threads not back to their start values {} s after\n", BACK_WAIT.as_secs()))
            }
        }
        for (k, v) in &self.notes {
            s.push_str(&format!("{k}: {v}\n"));
        }
        s.push_str("criteria:\n");
        s.push_str(&self.criteria.lines());
        s
    }
}

impl crate::verdict::Report for SoakReport {
    fn text(&self) -> String {
        self.text_report()
    }

    fn criteria(&self) -> &Criteria {
        &self.criteria
    }
}
