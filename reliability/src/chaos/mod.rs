//! `chaos`: faults injected into real `stepwire run` sessions, and the checks that nothing
//! finished was lost or doubled and that no process outlived its run.
//!
//! One recording, one plan, many runs: each run resumes the recording; while it plays, bridges
//! are killed, stopped and corrupted; then the runner itself is SIGKILLed at a random moment and
//! the next run resumes. After the planned kills a last run resumes to completion. Then the
//! recordings that cannot be written ([`disk`]).

pub mod bridges;
pub mod disk;
pub mod recording;
pub mod runner;
pub mod wrapper;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use bridges::{BridgeTree, Fault};
use runner::{RunSpec, Runner};

use crate::procfs::{self, TREE_MARKER};
use crate::verdict::Criteria;

/// Inject faults into real `stepwire run` sessions against the lockbox bridge and check that no
/// finished episode is lost or recorded twice and that no process is left behind.
///
/// The runs play `--policy expert` with `--jobs 2`, `--call-timeout 2` and one recording,
/// resumed by every run. Each bridge is this binary's wrapper around lockbox-bridge (`chaos
/// wrap-bridge`), which delays env/step (--step-delay-ms) so runs last long enough to be
/// interrupted and writes a frame that is not JSON when it gets SIGUSR1. The bridge faults,
/// taken in turn: SIGKILL to a bridge process, SIGSTOP to one (the call timeout must replace
/// it), SIGUSR1 to the wrapper (corrupt output). The runner kills: SIGKILL to `stepwire run` at
/// a random moment, followed by a `--resume` of the same file; a last resume runs to completion.
/// Bridges are found by the STEPWIRE_BRIDGE_TREE marker in /proc/*/environ.
///
/// Then the recordings that cannot be written: /dev/full, a path under a regular file, and a
/// resumed recording on a disk that fills up (a tmpfs where mounting is allowed, else a
/// file-size limit). Each must stop the run with an error and without a panic, a stray process or
/// the loss of what was recorded.
///
/// Progress goes to stderr, the report to stdout; the exit status is 1 when a check fails.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "chaos", version)]
pub struct ChaosArgs {
    /// Bridge faults to inject in all (kill, stop and corrupt in turn).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub bridge_faults: usize,
    /// Times `stepwire run` itself is SIGKILLed and resumed.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub runner_kills: usize,
    /// Variations per lockbox task in the plan (lockbox has 40 in its train split).
    #[arg(long, value_name = "K", default_value_t = 40)]
    pub per_task: u64,
    /// Times each episode is in the plan; by default enough that the faults end long before it.
    #[arg(long, value_name = "R")]
    pub repeat: Option<u32>,
    /// Bridges playing in parallel (`stepwire run --jobs`).
    #[arg(long, value_name = "K", default_value_t = 2)]
    pub jobs: usize,
    /// Delay the wrapper adds to every env/step while faults are injected.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub step_delay_ms: u64,
    /// `stepwire run --call-timeout`: how soon a stopped bridge is replaced.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub call_timeout: f64,
    /// Seed of every random choice (moments, targets).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Skip the unwritable-recording cases.
    #[arg(long)]
    pub no_disk: bool,
    /// Keep the work directory (recordings, each run's stdout and stderr) and print its path.
    #[arg(long)]
    pub keep: bool,
    /// The stepwire binary (default: beside this one).
    #[arg(long, value_name = "PATH")]
    pub stepwire: Option<PathBuf>,
    /// The lockbox bridge binary (default: beside this one).
    #[arg(long, value_name = "PATH")]
    pub bridge: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How long a faulted bridge may take to be gone while its runner runs (its episode failed and
/// the bridge replaced; a stopped one after --call-timeout).
const GONE_WAIT: Duration = Duration::from_secs(30);
/// How long the processes of a killed runner may take to end.
const STRAY_WAIT: Duration = Duration::from_secs(10);
/// Longest wait for a bridge to inject a fault into.
const TARGET_WAIT: Duration = Duration::from_secs(10);

/// The figures of one chaos session.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChaosReport {
    pub bridge_faults_planned: usize,
    pub bridge_faults: BTreeMap<String, usize>,
    pub runner_kills_planned: usize,
    pub runner_kills: usize,
    /// Seconds each killed runner had lived.
    pub kill_moments_s: Vec<f64>,
    /// Runs that ended on their own before their kill (the plan ran out, or they failed).
    pub runs_ended_early: Vec<String>,
    pub planned_episodes: usize,
    pub recorded_episodes: usize,
    pub episodes_lost: Vec<String>,
    pub episodes_recorded_twice: Vec<String>,
    pub recording_whole: bool,
    pub recording_problem: Option<String>,
    pub recording_bytes: u64,
    /// Failed episodes by cause, as the runner recorded them.
    pub failed_episodes: BTreeMap<String, usize>,
    /// Seconds from a fault to its bridge being gone (replaced), by fault.
    pub bridge_gone_after_s: BTreeMap<String, Vec<f64>>,
    pub faulted_bridges_never_gone: usize,
    pub stopped_processes_continued: usize,
    pub strays: Vec<String>,
    pub final_exit: Option<i32>,
    pub disk: Vec<disk::DiskCase>,
    pub work_dir: Option<String>,
    pub wall_s: f64,
    pub criteria: Criteria,
}

/// Episode ids of a `stepwire run --json` summary.
pub fn planned_ids(stdout: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<Value>(stdout) else { return Vec::new() };
    v["episodeResults"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["id"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// The same episodes, each once.
pub fn same_ids(planned: &[String], recorded: &[String]) -> bool {
    let p: BTreeSet<&String> = planned.iter().collect();
    let r: BTreeSet<&String> = recorded.iter().collect();
    p == r && recorded.len() == r.len()
}

/// The plan repeat that keeps episodes coming until every fault is in: an estimate of the
/// chaos phase's length times the episode rate, with room to spare.
fn auto_repeat(args: &ChaosArgs) -> u32 {
    // A third of the faults are stops, each lasting a call timeout.
    let stops = args.bridge_faults as f64 / 3.0;
    let seconds = 4.0 * args.runner_kills as f64 + 0.8 * args.bridge_faults as f64 + stops * args.call_timeout + 10.0;
    let episodes_per_s = args.jobs as f64 * 1000.0 / (3.0 * args.step_delay_ms as f64 + 50.0);
    let episodes = seconds * episodes_per_s * 1.5;
    ((episodes / (2.0 * args.per_task as f64)).ceil() as u32).max(1)
}

/// Runs a chaos session.
pub async fn run(args: ChaosArgs) -> anyhow::Result<ChaosReport> {
    let started = Instant::now();
    let stepwire = crate::binaries::locate(args.stepwire.as_deref(), "stepwire", "stepwire-runtime")?;
    let lockbox = crate::binaries::locate(args.bridge.as_deref(), "lockbox-bridge", "stepwire-example-bridge")?;
    let work = tempfile::Builder::new().prefix("stepwire-chaos-").tempdir()?;
    // Links named inside the work dir: every bridge process has its path on its command line,
    // for `pgrep -f`.
    let wrapper = work.path().join("bridge-wrapper");
    std::os::unix::fs::symlink(std::env::current_exe()?, &wrapper)?;
    let bridge = work.path().join("lockbox-bridge");
    std::os::unix::fs::symlink(&lockbox, &bridge)?;
    let tag = work.path().file_name().unwrap_or_default().to_string_lossy().into_owned();
    let spec = RunSpec {
        stepwire,
        env: format!("'{}' wrap-bridge '{}'", wrapper.display(), bridge.display()),
        tag,
        work_dir: work.path().to_path_buf(),
        per_task: args.per_task,
        repeat: args.repeat.unwrap_or_else(|| auto_repeat(&args)),
        jobs: args.jobs,
        call_timeout_s: args.call_timeout,
    };
    tracing::info!(work = %work.path().display(), repeat = spec.repeat, "chaos session starts");
    let mut session = Session::new(&args, spec.clone());
    session.play().await?;
    let mut report = session.report;
    if !args.no_disk {
        tracing::info!("unwritable recordings");
        report.disk = disk::run_all(&spec).await;
    }
    report.wall_s = started.elapsed().as_secs_f64();
    if args.keep {
        report.work_dir = Some(work.keep().display().to_string());
    }
    report.criteria = criteria(&report);
    Ok(report)
}

/// The state of one chaos session.
struct Session {
    args: ChaosArgs,
    spec: RunSpec,
    record: PathBuf,
    rng: StdRng,
    report: ChaosReport,
    faults_left: usize,
    next_fault: usize,
    /// Markers of the bridges already faulted (each bridge gets one fault).
    faulted: BTreeSet<String>,
    /// Processes this harness stopped that may still be stopped (if the runner is killed first).
    stopped: Vec<u32>,
    /// Every summary id seen so far: none may disappear.
    seen: BTreeSet<String>,
}

impl Session {
    fn new(args: &ChaosArgs, spec: RunSpec) -> Session {
        let record = spec.work_dir.join("chaos.jsonl");
        let report = ChaosReport {
            bridge_faults_planned: args.bridge_faults,
            runner_kills_planned: args.runner_kills,
            ..Default::default()
        };
        Session {
            args: args.clone(),
            spec,
            record,
            rng: StdRng::seed_from_u64(args.seed),
            report,
            faults_left: args.bridge_faults,
            next_fault: 0,
            faulted: BTreeSet::new(),
            stopped: Vec::new(),
            seen: BTreeSet::new(),
        }
    }

    async fn play(&mut self) -> anyhow::Result<()> {
        let mut attempt = 0;
        while self.report.runner_kills < self.args.runner_kills {
            attempt += 1;
            // Runs that keep ending on their own (failing) would never be killed: give up.
            anyhow::ensure!(
                attempt <= 2 * self.args.runner_kills + 10,
                "{} runs ended before their kill: {:?}",
                self.report.runs_ended_early.len(),
                self.report.runs_ended_early
            );
            let kills_left = self.args.runner_kills - self.report.runner_kills;
            let quota = self.faults_left.div_ceil(kills_left);
            if !self.killed_run(attempt, quota).await? {
                break; // the plan ran out: no run left to kill
            }
        }
        self.final_run().await
    }

    /// One run that is killed: faults while it plays, then SIGKILL. `false` when the run ended
    /// on its own because the plan was complete.
    async fn killed_run(&mut self, attempt: usize, quota: usize) -> anyhow::Result<bool> {
        let mut run = self.spec.start(&format!("run-{attempt:03}"), &self.record, true, self.args.step_delay_ms)?;
        // Some kills land while the run starts (bridges spawning, recording being repaired).
        if self.rng.random_bool(0.15) {
            tokio::time::sleep(Duration::from_millis(self.rng.random_range(0..400))).await;
        } else {
            if run.wait_for_plan(Duration::from_secs(60)).await {
                self.inject_faults(&mut run, quota).await;
            }
            tokio::time::sleep(Duration::from_millis(self.rng.random_range(0..1500))).await;
        }
        if !run.running() {
            let (status, stdout, stderr) = run.finish(Duration::from_secs(1)).await;
            let complete = status.is_some_and(|s| s.success()) && !planned_ids(&stdout).is_empty();
            let last = stderr.lines().last().unwrap_or_default().to_string();
            self.report.runs_ended_early.push(format!("run {attempt}: {status:?} {last}"));
            self.after_runner_ended("ended early").await?;
            return Ok(!complete);
        }
        let before = recording::read(&self.record)?;
        let lived = run.kill().await;
        self.report.runner_kills += 1;
        self.report.kill_moments_s.push((lived.as_secs_f64() * 100.0).round() / 100.0);
        tracing::info!(
            kill = self.report.runner_kills,
            after_s = lived.as_secs_f64(),
            recorded = before.summaries.len(),
            faults_left = self.faults_left,
            "runner SIGKILLed"
        );
        self.remember(&before);
        self.after_runner_ended("after a runner kill").await?;
        Ok(true)
    }

    /// Strays and losses after a runner ended (killed or not).
    async fn after_runner_ended(&mut self, when: &str) -> anyhow::Result<()> {
        self.report.stopped_processes_continued += bridges::resume_stopped(&std::mem::take(&mut self.stopped));
        let work = self.spec.work_dir.display().to_string();
        for s in bridges::wait_for_no_strays(&self.spec.tag, &work, STRAY_WAIT).await {
            self.report.strays.push(format!("{when}: {s}"));
        }
        let after = recording::read(&self.record)?;
        self.remember(&after);
        Ok(())
    }

    /// Checks a reading of the recording against every summary seen before: nothing may go.
    fn remember(&mut self, contents: &recording::Contents) {
        let now: BTreeSet<String> = contents.summaries.iter().cloned().collect();
        for id in self.seen.difference(&now) {
            if !self.report.episodes_lost.contains(id) {
                self.report.episodes_lost.push(id.clone());
            }
        }
        self.seen.extend(now);
        for d in contents.duplicates() {
            if !self.report.episodes_recorded_twice.contains(&d) {
                self.report.episodes_recorded_twice.push(d);
            }
        }
    }

    /// Up to `quota` bridge faults into `run`'s bridges, a fraction of a second apart.
    async fn inject_faults(&mut self, run: &mut Runner, quota: usize) {
        for _ in 0..quota.min(self.faults_left) {
            tokio::time::sleep(Duration::from_millis(self.rng.random_range(150..700))).await;
            if !run.running() || !self.inject_one(run).await {
                return;
            }
        }
    }

    /// One fault, the next kind in turn, into a bridge not faulted before; `false` if none came.
    async fn inject_one(&mut self, run: &mut Runner) -> bool {
        let fault = Fault::ALL[self.next_fault % Fault::ALL.len()];
        let deadline = Instant::now() + TARGET_WAIT;
        while Instant::now() < deadline && run.running() {
            let candidates: Vec<BridgeTree> = bridges::trees(&self.spec.tag)
                .into_iter()
                .filter(|t| !self.faulted.contains(&t.marker) && t.pids.len() >= 2 && t.wrapper.is_some())
                .collect();
            if !candidates.is_empty() {
                let tree = &candidates[self.rng.random_range(0..candidates.len())];
                match bridges::inject(tree, fault, &mut self.rng) {
                    Ok(pid) => {
                        let marker = tree.marker.clone();
                        self.faulted.insert(marker.clone());
                        if fault == Fault::Stop {
                            self.stopped.push(pid);
                        }
                        self.faults_left -= 1;
                        self.next_fault += 1;
                        *self.report.bridge_faults.entry(fault.name().into()).or_default() += 1;
                        tracing::debug!(fault = fault.name(), pid, "bridge fault injected");
                        // The runner must notice and replace the bridge while it runs.
                        match time_until_gone(&marker).await {
                            Some(s) => self.report.bridge_gone_after_s.entry(fault.name().into()).or_default().push(s),
                            None => self.report.faulted_bridges_never_gone += 1,
                        }
                        self.stopped.clear();
                        return true;
                    }
                    Err(e) => tracing::debug!("fault missed its target: {e}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        false
    }

    /// The last resume, to the end of the plan (with any faults still to inject).
    async fn final_run(&mut self) -> anyhow::Result<()> {
        let delay = if self.faults_left > 0 { self.args.step_delay_ms } else { 0 };
        let mut run = self.spec.start("final", &self.record, true, delay)?;
        if self.faults_left > 0 && run.wait_for_plan(Duration::from_secs(60)).await {
            let left = self.faults_left;
            self.inject_faults(&mut run, left).await;
        }
        let (status, stdout, stderr) = run.finish(Duration::from_secs(900)).await;
        self.report.final_exit = status.and_then(|s| s.code());
        if !status.is_some_and(|s| s.success()) {
            tracing::error!("the final resume failed: {status:?}\n{stderr}");
        }
        self.after_runner_ended("after the final run").await?;
        let planned = planned_ids(&stdout);
        let contents = recording::read(&self.record)?;
        let recorded: BTreeSet<&String> = contents.summaries.iter().collect();
        for id in planned.iter().filter(|id| !recorded.contains(id)) {
            if !self.report.episodes_lost.contains(id) {
                self.report.episodes_lost.push(id.clone());
            }
        }
        self.report.planned_episodes = planned.len();
        self.report.recorded_episodes = contents.summaries.len();
        self.report.recording_whole = contents.whole();
        self.report.recording_problem = contents.problem.clone();
        self.report.recording_bytes = contents.bytes;
        for f in &contents.failures {
            *self.report.failed_episodes.entry(failure_cause(f).into()).or_default() += 1;
        }
        Ok(())
    }
}

/// Seconds until no process of the bridge tree `marker` is alive (`None` past [`GONE_WAIT`]).
async fn time_until_gone(marker: &str) -> Option<f64> {
    let started = Instant::now();
    while started.elapsed() < GONE_WAIT {
        if procfs::carrying(TREE_MARKER, |v| v == marker).is_empty() {
            return Some((started.elapsed().as_secs_f64() * 100.0).round() / 100.0);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// The cause of a failed episode, from the runner's reason.
fn failure_cause(reason: &str) -> &'static str {
    if reason.contains("did not answer") {
        "call timeout (stopped bridge)"
    } else if reason.contains("broke the protocol") {
        "protocol broken (corrupted output)"
    } else if reason.contains("gone") || reason.contains("exited") || reason.contains("crash") {
        "bridge gone (killed)"
    } else {
        "other"
    }
}

fn criteria(r: &ChaosReport) -> Criteria {
    let mut c = Criteria::default();
    let injected: usize = r.bridge_faults.values().sum();
    c.check(
        "every bridge fault injected",
        injected == r.bridge_faults_planned,
        format!("{injected} of {} ({:?})", r.bridge_faults_planned, r.bridge_faults),
    );
    c.check(
        "every runner kill done",
        r.runner_kills == r.runner_kills_planned,
        format!("{} of {}", r.runner_kills, r.runner_kills_planned),
    );
    let exit = r.final_exit.map_or_else(|| "no exit status".to_string(), |c| format!("exit {c}"));
    c.check("the final resume completed", r.final_exit == Some(0), exit);
    c.check(
        "0 finished episodes lost",
        r.episodes_lost.is_empty() && r.planned_episodes > 0 && r.recorded_episodes >= r.planned_episodes,
        format!(
            "{} lost; {} planned, {} summaries in the file",
            r.episodes_lost.len(),
            r.planned_episodes,
            r.recorded_episodes
        ),
    );
    c.check(
        "0 episodes recorded twice",
        r.episodes_recorded_twice.is_empty(),
        format!("{} recorded twice {:?}", r.episodes_recorded_twice.len(), r.episodes_recorded_twice),
    );
    c.check(
        "the recording holds only whole episodes",
        r.recording_whole,
        format!("{} bytes; problem {:?}", r.recording_bytes, r.recording_problem),
    );
    c.check("0 stray processes", r.strays.is_empty(), format!("{} strays {:?}", r.strays.len(), r.strays));
    c.check(
        "every faulted bridge replaced while its run went on",
        r.faulted_bridges_never_gone == 0,
        format!("{} still alive {} s after their fault", r.faulted_bridges_never_gone, GONE_WAIT.as_secs()),
    );
    let failed: usize = r.failed_episodes.values().sum();
    c.check(
        "no episode failed without a fault",
        failed <= injected && !r.failed_episodes.contains_key("other"),
        format!("{failed} failed episodes for {injected} faults: {:?}", r.failed_episodes),
    );
    for d in &r.disk {
        c.check(&format!("unwritable recording: {}", d.name), d.passed, d.detail.clone());
    }
    c
}

impl ChaosReport {
    fn text_report(&self) -> String {
        let mut s = format!("chaos: wall {:.1} s\n", self.wall_s);
        s.push_str(&format!("bridge faults: {:?} of {} planned\n", self.bridge_faults, self.bridge_faults_planned));
        for (fault, times) in &self.bridge_gone_after_s {
            let max = times.iter().copied().fold(0.0, f64::max);
            let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
            s.push_str(&format!("  {fault}: bridge gone {mean:.2} s after the fault on average, {max:.2} s at most\n"));
        }
        s.push_str(&format!(
            "runner kills: {} of {} (after {:?} s of life)\n",
            self.runner_kills, self.runner_kills_planned, self.kill_moments_s
        ));
        if !self.runs_ended_early.is_empty() {
            s.push_str(&format!("runs that ended before their kill: {:?}\n", self.runs_ended_early));
        }
        s.push_str(&format!(
            "episodes: {} planned, {} summaries recorded, {} lost, {} recorded twice; failed by cause {:?}\n",
            self.planned_episodes,
            self.recorded_episodes,
            self.episodes_lost.len(),
            self.episodes_recorded_twice.len(),
            self.failed_episodes
        ));
        s.push_str(&format!(
            "recording: {} bytes, whole episodes only: {}; stray processes: {}; stopped processes continued after a runner kill: {}\n",
            self.recording_bytes,
            self.recording_whole,
            self.strays.len(),
            self.stopped_processes_continued
        ));
        for d in &self.disk {
            s.push_str(&format!(
                "disk: {}: exit {:?}, {}: {}\n",
                d.name,
                d.exit,
                if d.error.is_empty() { "no error line" } else { &d.error },
                d.detail
            ));
        }
        if let Some(w) = &self.work_dir {
            s.push_str(&format!("work directory kept: {w}\n"));
        }
        s.push_str("criteria:\n");
        s.push_str(&self.criteria.lines());
        s
    }
}

impl crate::verdict::Report for ChaosReport {
    fn text(&self) -> String {
        self.text_report()
    }

    fn criteria(&self) -> &Criteria {
        &self.criteria
    }
}
