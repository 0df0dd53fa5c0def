//! The episode runner behind `stepwire run`: plays a plan of episodes against bridge processes,
//! `--jobs` of them in parallel, records every episode and reports the results.
//!
//! Shape: the main task asks one bridge for its tasks, builds the plan, and puts the episodes in
//! a shared queue. Each worker owns one bridge and plays one episode at a time from the queue;
//! finished episodes (their recording lines and summary) go back over a channel to the main task,
//! the only writer of the recording file. A bridge that crashes or hangs is killed, its episode
//! is recorded as failed with the reason, and the worker starts a fresh bridge for the next one.
//! SIGINT/SIGTERM stop the workers, abandon the episodes in flight (they are not recorded), shut
//! the bridges down and still write every episode that finished.

pub mod external;
pub mod plan;
pub mod policy;
mod progress;
pub mod record;
pub mod resume;
pub mod summary;

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use serde_json::{Map, Value};
use stepwire_sdk::client::{BridgeClient, BridgeCommand, BridgeOptions};
use stepwire_sdk::controller::{play_episode, EpisodeOptions};
use stepwire_sdk::environment::{EnvError, Environment};
use stepwire_sdk::protocol::{
    EnvironmentCapabilities, EpisodeOutcome, EpisodeSummary, ExpertActionResult, LevelTransition, RecordLine,
    ResetParams, ResetResult, Sampling, StepResult, TaskInfo,
};
use tokio::sync::{mpsc, watch};

use external::{PlanListing, RunMode};
use plan::{PlannedEpisode, Selection};
use policy::{PolicySpec, RunPolicies};
use record::Recording;
use summary::{ReportInput, RunSummary};

/// Where the recording goes.
#[derive(Debug, Clone)]
pub enum RecordTarget {
    Off,
    /// `path: None` means `runs/<env>-<timestamp>.jsonl` (or, with `resume`, the newest such file).
    File {
        path: Option<PathBuf>,
        resume: bool,
        overwrite: bool,
        /// Observation text (and each part) longer than this is cut in the recording.
        max_observation_bytes: usize,
    },
}

impl RecordTarget {
    fn observation_limit(&self) -> usize {
        match self {
            RecordTarget::File { max_observation_bytes, .. } => *max_observation_bytes,
            RecordTarget::Off => usize::MAX,
        }
    }
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// What `--env` resolved to.
    pub env_name: String,
    pub command: BridgeCommand,
    pub selection: Selection,
    pub policy: PolicySpec,
    /// Record the expert's advice beside a policy's transitions (training labels).
    pub expert_labels: bool,
    pub model: crate::policies::ModelOptions,
    /// Pass admissible actions to model policies (when the bridge offers them).
    pub admissible: bool,
    /// Sampling for model policies (None: greedy); seeded per step by the controller.
    pub sampling: Option<Sampling>,
    pub jobs: usize,
    pub max_steps: u64,
    pub episode_timeout: Option<Duration>,
    pub call_timeout: Duration,
    pub startup_timeout: Duration,
    pub reset_options: Map<String, Value>,
    pub record: RecordTarget,
    /// Show a progress bar (when stderr is a terminal).
    pub progress_bar: bool,
    /// Play only these planned episodes (`--only-episodes`): the plan is narrowed to them.
    pub only: Option<HashSet<String>>,
    /// Play, print the plan, or report what others recorded.
    pub mode: RunMode,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub summary: RunSummary,
    /// The signal that stopped the run early (SIGINT = 2, SIGTERM = 15).
    pub interrupted_by: Option<i32>,
    /// Why the run could not finish its plan although it was not interrupted (bridges would
    /// not restart).
    pub aborted: Option<String>,
    /// The plan, when `RunMode::PrintPlan` asked for it instead of a run.
    pub listing: Option<PlanListing>,
}

/// What the run is about to do, announced before it starts.
#[derive(Debug, Clone)]
pub struct PlanInfo {
    pub env: String,
    pub split: String,
    pub planned: usize,
    pub already_recorded: usize,
    pub to_run: usize,
    pub jobs: usize,
    pub record: Option<PathBuf>,
}

/// Plays the run; `announce` is called once the plan is known.
pub async fn run(config: RunConfig, announce: impl FnOnce(&PlanInfo)) -> anyhow::Result<RunOutcome> {
    let started = Instant::now();
    let mut signals = Signals::new()?;
    let policies = RunPolicies::load(&config.policy, config.model)?;
    let bridge_opts = BridgeOptions {
        call_timeout: config.call_timeout,
        initialize_timeout: config.startup_timeout,
        shutdown_timeout: Duration::from_secs(3),
        ..BridgeOptions::default()
    };

    // One bridge first: its tasks make the plan, then it becomes worker 0's.
    let setup = async {
        let mut bridge = BridgeClient::spawn(config.command.clone(), bridge_opts.clone())
            .await
            .with_context(|| format!("the `{}` bridge did not start", config.env_name))?;
        let tasks = bridge.tasks().await.context("env/tasks failed")?;
        anyhow::Ok((bridge, tasks))
    };
    let (first_bridge, tasks): (BridgeClient, Vec<TaskInfo>) = tokio::select! {
        r = setup => r?,
        sig = signals.recv() => anyhow::bail!("interrupted by signal {sig} while starting the bridge"),
    };
    let caps = first_bridge.capabilities();
    let env = if caps.name.is_empty() { config.env_name.clone() } else { caps.name.clone() };
    if matches!(config.policy, PolicySpec::Expert) && !caps.expert_action {
        anyhow::bail!("--policy expert needs env/expertAction, which the `{env}` bridge does not offer");
    }
    if config.expert_labels && !caps.expert_action {
        anyhow::bail!("--expert-labels needs env/expertAction, which the `{env}` bridge does not offer");
    }
    let (split, plan) = plan::build(&env, &tasks, &config.selection)?;
    let plan = match &config.only {
        Some(only) => external::narrow(plan, only)?,
        None => plan,
    };

    // The recording, and what an earlier run already did.
    let (mut recording, existing) = match &config.record {
        RecordTarget::Off => (None, Default::default()),
        RecordTarget::File { path, resume: true, .. } => {
            let path = match path {
                Some(p) => p.clone(),
                None => record::latest_default(&env)
                    .with_context(|| format!("--resume without --record: no earlier runs/{env}-*.jsonl to resume"))?,
            };
            let (rec, existing) = Recording::resume(&path)?;
            let rec = rec.with_observation_limit(config.record.observation_limit());
            if existing.keep_until < existing.len {
                tracing::warn!(
                    file = %path.display(),
                    bytes = existing.len - existing.keep_until,
                    "cut the torn last episode (its lines after the last summary) from the recording"
                );
            }
            (Some(rec), existing)
        }
        RecordTarget::File { path, overwrite, .. } => {
            let path = path.clone().unwrap_or_else(|| record::default_path(&env));
            let rec = Recording::create(&path, *overwrite)?.with_observation_limit(config.record.observation_limit());
            (Some(rec), Default::default())
        }
    };
    let mut results: Vec<Option<(EpisodeSummary, bool)>> = vec![None; plan.len()];
    let mut queue = VecDeque::new();
    let planned_ids: HashSet<String> = plan.iter().map(|p| p.key.id()).collect();
    for (i, ep) in plan.iter().enumerate() {
        match existing.summaries.get(&ep.key.id()) {
            Some(s) => results[i] = Some((s.clone(), true)),
            None => queue.push_back((i, ep.clone())),
        }
    }
    let outside = existing.summaries.keys().filter(|k| !planned_ids.contains(*k)).count();
    if outside > 0 {
        tracing::info!(
            episodes = outside,
            "the recording holds episodes outside this plan; they are left out of the report"
        );
    }
    if let RunMode::Report(report) = &config.mode {
        // The episodes were played elsewhere: nothing is played here; those recorded in this
        // run are reported as played, the ones still missing as not run.
        let played: HashSet<&str> = report.played.iter().map(String::as_str).collect();
        for (i, ep) in plan.iter().enumerate() {
            if let Some((_, resumed)) = results[i].as_mut() {
                *resumed = !played.contains(ep.key.id().as_str());
            }
        }
        queue.clear();
    }
    if matches!(config.mode, RunMode::PrintPlan) {
        let recorded: Vec<bool> = results.iter().map(Option::is_some).collect();
        let record = recording.as_ref().map(|r| r.path().to_path_buf());
        let listing = PlanListing::new(&env, &split, &plan, &recorded, record);
        shutdown_bridge(first_bridge).await;
        let ordered: Vec<(&EpisodeSummary, bool)> = results.iter().flatten().map(|(s, r)| (s, *r)).collect();
        let summary = RunSummary::build(ReportInput {
            env: &env,
            split: &split,
            policy: &config.policy.label(),
            planned: plan.len(),
            interrupted: false,
            wall_seconds: started.elapsed().as_secs_f64(),
            record: listing.record.as_ref().map(|r| r.display().to_string()),
            results: ordered,
        });
        return Ok(RunOutcome { summary, interrupted_by: None, aborted: None, listing: Some(listing) });
    }
    let to_run = queue.len();
    let jobs = config.jobs.max(1).min(to_run.max(1));
    announce(&PlanInfo {
        env: env.clone(),
        split: split.clone(),
        planned: plan.len(),
        already_recorded: plan.len() - to_run,
        to_run,
        jobs,
        record: recording.as_ref().map(|r| r.path().to_path_buf()),
    });

    let offered = config.admissible && caps.admissible_actions;
    let constrained = policies.wants_admissible();
    if offered && !constrained {
        tracing::info!(
            "the policy writes actions freely (`[low] admissible = false`): admissible actions asked for only to \
             repair a refused action"
        );
    }
    let options = EpisodeOptions {
        max_steps: config.max_steps,
        admissible_actions: offered && constrained,
        sampling: config.sampling.clone(),
        expert_labels: config.expert_labels,
        // A free-writing policy gets a constrained second choice when the bridge refuses its action.
        repair_refused: offered && !constrained,
    };
    let shared = Arc::new(Shared {
        command: config.command.clone(),
        bridge_opts,
        policies,
        options,
        episode_timeout: config.episode_timeout,
        split: split.clone(),
        reset_options: config.reset_options.clone(),
        queue: Mutex::new(queue),
    });

    let mut display = progress::EpisodeProgress::new(to_run, config.progress_bar);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (tx, mut rx) = mpsc::unbounded_channel::<WorkerEvent>();
    let mut workers = Vec::new();
    let mut first = Some(first_bridge);
    for id in 0..(if to_run == 0 { 0 } else { jobs }) {
        workers.push(tokio::spawn(worker(id, first.take(), shared.clone(), tx.clone(), stop_rx.clone())));
    }
    drop(tx);
    if let Some(b) = first.take() {
        shutdown_bridge(b).await;
    }

    let mut interrupted_by = None;
    let mut gone: Vec<String> = Vec::new();
    let mut write_error: Option<anyhow::Error> = None;
    loop {
        tokio::select! {
            event = rx.recv() => match event {
                None => break,
                Some(WorkerEvent::Finished { index, summary, lines }) => {
                    // After a failed write nothing more is written: the file keeps whole
                    // episodes, and those finished since are played again by --resume.
                    if let Some(rec) = recording.as_mut().filter(|_| write_error.is_none()) {
                        if let Err(e) = rec.write_episode(lines) {
                            // A recording that cannot be written is fatal: stop, keep what is there.
                            tracing::error!("{e:#}");
                            write_error.get_or_insert(e);
                            let _ = stop_tx.send(true);
                        }
                    }
                    display.finished(&summary);
                    results[index] = Some((*summary, false));
                }
                Some(WorkerEvent::Gone { worker, reason }) => {
                    tracing::error!(worker, "worker stopped: {reason}");
                    gone.push(reason);
                }
            },
            sig = signals.recv(), if interrupted_by.is_none() => {
                interrupted_by = Some(sig);
                // The log writer suspends the bar itself; wrapping this in `bar.suspend` would deadlock.
                tracing::warn!(signal = sig, "stopping: finishing the recording and shutting the bridges down");
                let _ = stop_tx.send(true);
            }
        }
    }
    for w in workers {
        if let Err(e) = w.await {
            tracing::error!("a worker panicked: {e}");
        }
    }
    display.finish();
    if let Some(e) = write_error {
        return Err(e);
    }

    let (external_wall, external_interrupted) = match &config.mode {
        RunMode::Report(r) => (Some(r.wall_seconds), r.interrupted),
        _ => (None, false),
    };
    let ordered: Vec<(&EpisodeSummary, bool)> = results.iter().flatten().map(|(s, r)| (s, *r)).collect();
    let summary = RunSummary::build(ReportInput {
        env: &env,
        split: &split,
        policy: &config.policy.label(),
        planned: plan.len(),
        interrupted: interrupted_by.is_some() || external_interrupted,
        wall_seconds: external_wall.unwrap_or_else(|| started.elapsed().as_secs_f64()),
        record: recording.as_ref().map(|r| r.path().display().to_string()),
        results: ordered,
    });
    let aborted = if interrupted_by.is_none() && !external_interrupted && summary.not_run > 0 {
        let fallback = match config.mode {
            RunMode::Report(_) => "the recording lacks them (the cluster run did not finish them)",
            _ => "the workers stopped early",
        };
        Some(gone.first().cloned().unwrap_or_else(|| fallback.into()))
    } else {
        None
    };
    Ok(RunOutcome { summary, interrupted_by, aborted, listing: None })
}

/// SIGINT and SIGTERM as one stream of signal numbers.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
                int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn recv(&mut self) -> i32 {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => 2,
                _ = self.term.recv() => 15,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            2
        }
    }
}

/// State every worker shares.
struct Shared {
    command: BridgeCommand,
    bridge_opts: BridgeOptions,
    policies: RunPolicies,
    options: EpisodeOptions,
    episode_timeout: Option<Duration>,
    split: String,
    reset_options: Map<String, Value>,
    queue: Mutex<VecDeque<(usize, PlannedEpisode)>>,
}

impl Shared {
    fn next(&self) -> Option<(usize, PlannedEpisode)> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front()
    }

    fn give_back(&self, item: (usize, PlannedEpisode)) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).push_front(item);
    }
}

enum WorkerEvent {
    Finished { index: usize, summary: Box<EpisodeSummary>, lines: Vec<RecordLine> },
    Gone { worker: usize, reason: String },
}

/// Consecutive failed bridge starts after which a worker gives up.
const MAX_START_FAILURES: u32 = 3;

async fn worker(
    id: usize,
    mut bridge: Option<BridgeClient>,
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<WorkerEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let mut start_failures = 0u32;
    loop {
        if *stop.borrow() {
            break;
        }
        let Some(item) = shared.next() else { break };
        if bridge.is_none() {
            let spawned = tokio::select! {
                r = BridgeClient::spawn(shared.command.clone(), shared.bridge_opts.clone()) => Some(r),
                _ = stop.wait_for(|s| *s) => None,
            };
            match spawned {
                None => {
                    shared.give_back(item);
                    break;
                }
                Some(Ok(b)) => {
                    start_failures = 0;
                    bridge = Some(b);
                }
                Some(Err(e)) => {
                    shared.give_back(item);
                    start_failures += 1;
                    tracing::warn!(worker = id, attempt = start_failures, "bridge did not start: {e}");
                    if start_failures >= MAX_START_FAILURES {
                        let _ = tx.send(WorkerEvent::Gone {
                            worker: id,
                            reason: format!("the bridge did not start {start_failures} times in a row: {e}"),
                        });
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                    continue;
                }
            }
        }
        let Some(client) = bridge.as_mut() else {
            continue;
        };
        let (index, planned) = item;
        let played = tokio::select! {
            r = play_one(client, &shared, &planned) => Some(r),
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some(played) = played else {
            // Interrupted mid-episode: the bridge is in an unknown state; kill it, record nothing.
            tracing::info!(worker = id, episode = planned.key.id(), "abandoned by the interruption");
            drop(bridge.take());
            break;
        };
        if let Some(reason) = &played.kill_bridge {
            tracing::warn!(worker = id, episode = planned.key.id(), "restarting the bridge: {reason}");
            drop(bridge.take()); // kills its process group
        }
        if tx.send(WorkerEvent::Finished { index, summary: Box::new(played.summary), lines: played.lines }).is_err() {
            break;
        }
    }
    if let Some(b) = bridge.take() {
        shutdown_bridge(b).await;
    }
}

async fn shutdown_bridge(bridge: BridgeClient) {
    let name = bridge.name().to_string();
    if let Err(e) = bridge.shutdown().await {
        tracing::debug!(bridge = name, "shutdown: {e}");
    }
}

struct Played {
    summary: EpisodeSummary,
    lines: Vec<RecordLine>,
    /// Set when the bridge crashed or hung and must be replaced.
    kill_bridge: Option<String>,
}

async fn play_one(client: &mut BridgeClient, shared: &Shared, planned: &PlannedEpisode) -> Played {
    let key = planned.key.clone();
    let reset = ResetParams {
        task: key.task.clone(),
        split: Some(shared.split.clone()),
        variation: Some(key.variation),
        seed: Some(planned.seed),
        options: shared.reset_options.clone(),
        meta: None,
    };
    let reset_sent = reset.clone();
    let mut env = Watched { inner: client, crashed: None };
    let mut lines: Vec<RecordLine> = Vec::new();
    let cancel = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    let fut =
        play_episode(&mut env, shared.policies.borrow(), reset, key.clone(), &shared.options, &mut lines, &cancel);
    let result = match shared.episode_timeout {
        Some(limit) => tokio::time::timeout(limit, fut).await.map_err(|_| limit),
        None => Ok(fut.await),
    };
    let crashed = env.crashed.take();
    let failed = |failure: String, steps: u64, task_description: String| EpisodeSummary {
        steps,
        failure: Some(failure),
        reset: Some(reset_sent.clone()),
        ..EpisodeSummary::new(key.clone(), task_description, EpisodeOutcome::Failed)
    };
    match result {
        Ok(Ok(summary)) => Played { summary, lines, kill_bridge: crashed },
        Ok(Err(e)) => {
            let summary = failed(format!("reset: {e}"), 0, String::new());
            lines.push(RecordLine::Episode(summary.clone()));
            Played { summary, lines, kill_bridge: crashed }
        }
        Err(limit) => {
            // The lines of the steps played so far stay; the summary says why it stopped.
            let steps = lines
                .iter()
                .filter(
                    |l| matches!(l, RecordLine::Transition(t) if matches!(t.transition, LevelTransition::Low { .. })),
                )
                .count() as u64;
            let reason = format!(
                "episode timeout: not finished within {:.1} s (bridge killed and restarted)",
                limit.as_secs_f64()
            );
            let mut summary = failed(reason.clone(), steps, String::new());
            summary.env_seconds = started.elapsed().as_secs_f64();
            lines.push(RecordLine::Episode(summary.clone()));
            Played { summary, lines, kill_bridge: Some(reason) }
        }
    }
}

/// A bridge client that remembers whether it crashed (or hung: the client reports a timeout as
/// a crash), so the worker knows to replace it.
struct Watched<'a> {
    inner: &'a mut BridgeClient,
    crashed: Option<String>,
}

impl Watched<'_> {
    fn note<T>(&mut self, r: Result<T, EnvError>) -> Result<T, EnvError> {
        if let Err(EnvError::Crashed(m)) = &r {
            self.crashed.get_or_insert_with(|| m.clone());
        }
        r
    }
}

#[async_trait]
impl Environment for Watched<'_> {
    fn capabilities(&self) -> EnvironmentCapabilities {
        self.inner.capabilities()
    }

    async fn tasks(&mut self) -> Result<Vec<TaskInfo>, EnvError> {
        let r = self.inner.tasks().await;
        self.note(r)
    }

    async fn reset(&mut self, params: ResetParams) -> Result<ResetResult, EnvError> {
        let r = self.inner.reset(params).await;
        self.note(r)
    }

    async fn step(&mut self, action: &str) -> Result<StepResult, EnvError> {
        let r = self.inner.step(action).await;
        self.note(r)
    }

    async fn admissible_actions(&mut self) -> Result<Vec<String>, EnvError> {
        let r = self.inner.admissible_actions().await;
        self.note(r)
    }

    async fn expert_action(&mut self) -> Result<ExpertActionResult, EnvError> {
        let r = self.inner.expert_action().await;
        self.note(r)
    }
}
