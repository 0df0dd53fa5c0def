//! `stepwire run`: play episodes of an environment with a policy, record them, report results.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{Map, Value};

use crate::envs;
use crate::policies::ModelOptions;
use crate::runner::external::{self, ExternalReport, RunMode};
use crate::runner::plan::Selection;
use crate::runner::policy::PolicySpec;
use crate::runner::{self, RecordTarget, RunConfig};
use stepwire_sdk::protocol::Sampling;

/// Play episodes against a bridge and report success rate, score, steps and time per step.
///
/// Episodes are (task, variation) pairs from the bridge's `env/tasks` in one split. By default
/// every variation of every task is played once; narrow with --tasks, --variations, --per-task
/// or --episodes. Each episode's transitions and summary are appended to a JSONL recording
/// (schema: schemas/record.line.json) as soon as it ends, so an interrupted run can --resume.
///
/// Exit status: 0 when the run completed (even if episodes failed), 1 when it could not run
/// (bad arguments, the bridge would not start), 2 when --min-success was not reached, 130/143
/// when interrupted by SIGINT/SIGTERM.
#[derive(Debug, clap::Args)]
#[command(after_long_help = ENV_HELP)]
pub struct RunArgs {
    /// Environment: a known name (scienceworld, alfworld, textworld, babyai, toytext, lockbox,
    /// python-example) or a bridge command line split with shell-words rules, e.g.
    /// "./my-bridge --flag 'a b'".
    #[arg(long, value_name = "NAME|COMMAND")]
    pub env: String,

    /// Split to play; `train` when the environment lists it, else its first split.
    #[arg(long)]
    pub split: Option<String>,
    /// Only these tasks (comma separated task ids).
    #[arg(long, value_delimiter = ',', value_name = "TASK,...")]
    pub tasks: Vec<String>,
    /// Only these variation indices of each task (comma separated).
    #[arg(long, value_delimiter = ',', value_name = "N,...")]
    pub variations: Option<Vec<u64>>,
    /// The first K variations of each task.
    #[arg(long, value_name = "K")]
    pub per_task: Option<u64>,
    /// Sample N (task, variation) pairs across the split, without replacement, with --seed.
    #[arg(long, value_name = "N")]
    pub episodes: Option<usize>,
    /// Play every chosen pair R times.
    #[arg(long, default_value_t = 1, value_name = "R")]
    pub repeat: u32,
    /// Seed of the episode sample and of each episode's env/reset seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Extra env/reset option KEY=VALUE (VALUE parsed as JSON, else taken as a string); repeatable.
    #[arg(long = "reset-option", value_name = "KEY=VALUE")]
    pub reset_options: Vec<String>,

    /// `expert` (the bridge's env/expertAction, with the subtasks it names or else the whole task
    /// as one, and the rules progress tracker),
    /// `rules` (rule-based, first admissible action), `random` (a uniformly random admissible
    /// action each step, seeded per step: the baseline) or an exported policy directory.
    #[arg(long, default_value = "expert", value_name = "expert|rules|random|DIR")]
    pub policy: String,
    /// With a model policy: also ask the bridge's expert what it would do in every state the
    /// policy visits, and record its answer (`_meta.expert`) and the rules tracker's progress
    /// (`_meta.expertProgress`) beside the transitions: labels for DAgger-style training.
    #[arg(long)]
    pub expert_labels: bool,
    #[command(flatten)]
    pub model: ModelOptions,
    /// Give model policies the admissible actions (default; when the bridge offers them).
    #[arg(long, overrides_with = "no_admissible")]
    pub admissible: bool,
    /// Do not ask for admissible actions: the policy generates actions freely.
    #[arg(long, overrides_with = "admissible")]
    pub no_admissible: bool,
    /// Sample model outputs at this temperature instead of decoding greedily. Each step's seed
    /// derives from the episode's seed and the step, so a run repeats exactly, but a state met
    /// twice can be answered differently (a greedy policy that revisits a state repeats itself).
    #[arg(long, value_name = "T")]
    pub temperature: Option<f32>,
    /// With --temperature: sample from the smallest set of tokens whose probability reaches P.
    #[arg(long, value_name = "P", requires = "temperature")]
    pub top_p: Option<f32>,

    /// Bridge processes playing in parallel, one episode at a time each.
    #[arg(long, short = 'j', default_value_t = 1, value_name = "K")]
    pub jobs: usize,
    /// Step limit per episode (outcome `truncated` when reached). ScienceWorld's gold paths can
    /// exceed 300 steps: raise this when replaying its expert.
    #[arg(long, default_value_t = 100)]
    pub max_steps: u64,
    /// Seconds an episode may take before its bridge is killed and the episode marked failed.
    #[arg(long, value_name = "SECONDS")]
    pub episode_timeout: Option<f64>,
    /// Seconds any single bridge call may take (a hung bridge is killed and restarted).
    #[arg(long, default_value_t = 120.0, value_name = "SECONDS")]
    pub call_timeout: f64,
    /// Seconds a bridge may take to start and answer `initialize`.
    #[arg(long, default_value_t = 120.0, value_name = "SECONDS")]
    pub startup_timeout: f64,

    /// Recording file (JSONL); default runs/<env>-<timestamp>.jsonl.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Do not record.
    #[arg(long, conflicts_with_all = ["record", "resume"])]
    pub no_record: bool,
    /// Continue a recording: skip the episodes it already has a summary for, cut a torn last
    /// episode (nothing else: the file is only appended to), and report its earlier episodes with
    /// the new ones. A file whose lines are not records is refused, unchanged. Without --record:
    /// the newest runs/<env>-*.jsonl.
    #[arg(long)]
    pub resume: bool,
    /// Replace an existing non-empty recording instead of refusing.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Observation text (and each observation part) longer than this many bytes is cut in the
    /// recording, with a marker saying how much: an environment that prints megabytes a step
    /// cannot balloon the file.
    #[arg(long, value_name = "BYTES", default_value_t = crate::runner::record::DEFAULT_MAX_OBSERVATION_BYTES)]
    pub max_observation_bytes: usize,

    /// Print the summary as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No progress bar (one log line per finished episode instead).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Exit with status 2 when the success rate is below this fraction (0..1).
    #[arg(long, value_name = "FRACTION")]
    pub min_success: Option<f64>,
    /// Exit with status 2 when more than N episodes failed: ended by an error (a crashed bridge,
    /// a refused policy request) rather than won, lost or cut at --max-steps.
    #[arg(long, value_name = "N")]
    pub max_failed: Option<usize>,

    /// Print the plan as JSON on stdout (env, split, each episode's id, task, variation, repeat,
    /// reset seed, and whether the recording already holds it) and play nothing. The recording
    /// is opened as a run would open it (created; with --resume scanned and its torn tail cut),
    /// so a driver that spreads the episodes elsewhere appends to a file this command vetted.
    #[arg(long, conflicts_with_all = ["report_from", "only_episodes"])]
    pub print_plan: bool,
    /// Play only these planned episodes: a file of episode ids (`env/task/split/variation#repeat`,
    /// as --print-plan lists them), one a line. The plan is narrowed to them; an id that is not
    /// in the plan is an error. How a cluster worker plays its share of a plan.
    #[arg(long, value_name = "FILE")]
    pub only_episodes: Option<PathBuf>,
    /// Play nothing: report the --resume'd recording that a driver filled, from FILE:
    /// {"played": [ids recorded in this run], "wallSeconds": S, "interrupted": false}. Planned
    /// episodes the recording lacks count as not run (exit status 1), as in a local run.
    #[arg(long, value_name = "FILE", requires = "resume")]
    pub report_from: Option<PathBuf>,
}

const ENV_HELP: &str = "\
Environments by name:
  scienceworld    <python> bridges/scienceworld/bridge.py
  alfworld        <python> bridges/alfworld/bridge.py
  textworld       <python> bridges/textworld/bridge.py
  babyai          <python> bridges/babyai/bridge.py
  toytext         <python> bridges/toytext/bridge.py
  lockbox         the lockbox-bridge binary (next to stepwire, or target/{debug,release})
  python-example  <python> examples/python-bridge/bridge.py
<python> is $STEPWIRE_PYTHON, else <repo>/.venv/bin/python, else python3.

Exit status: 0 when the run completed (even if episodes failed), 1 when it could not run (bad
arguments, the bridge would not start), 2 when --min-success or --max-failed was not met,
130/143 when stopped by SIGINT/SIGTERM (finished episodes are recorded; --resume continues).

Examples:
  stepwire run --env lockbox --jobs 2 --json
  stepwire run --env scienceworld --tasks boil,melt --per-task 5 --max-steps 400
  stepwire run --env \"./target/release/my-bridge --data dir\" --episodes 50 --seed 1
  stepwire run --env lockbox --record runs/x.jsonl --resume
  stepwire run --env lockbox --per-task 2 --no-record --print-plan

Across a Ray cluster: python -m stepwire_cluster run --ray ADDRESS <these run arguments>
(cluster/README.md); it uses --print-plan, --only-episodes and --report-from.";

fn seconds(name: &str, v: f64) -> anyhow::Result<Duration> {
    if !v.is_finite() || v <= 0.0 {
        bail!("--{name} must be a positive number of seconds, not {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

fn reset_options(items: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut map = Map::new();
    for item in items {
        let (k, v) = item.split_once('=').with_context(|| format!("--reset-option `{item}` is not KEY=VALUE"))?;
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        map.insert(k.to_string(), value);
    }
    Ok(map)
}

impl RunArgs {
    pub fn config(&self) -> anyhow::Result<RunConfig> {
        if let Some(m) = self.min_success {
            if !(0.0..=1.0).contains(&m) {
                bail!("--min-success must be a fraction between 0 and 1, not {m}");
            }
        }
        if self.jobs == 0 {
            bail!("--jobs must be at least 1");
        }
        if self.repeat == 0 {
            bail!("--repeat must be at least 1");
        }
        if self.max_steps == 0 {
            bail!("--max-steps must be at least 1");
        }
        if let Some(t) = self.temperature.filter(|t| !(t.is_finite() && *t >= 0.0)) {
            bail!("--temperature must be a number >= 0 (0 decodes greedily), not {t}");
        }
        if let Some(p) = self.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            bail!("--top-p must be in (0, 1], not {p}");
        }
        let env = envs::resolve(&self.env)?;
        Ok(RunConfig {
            env_name: env.name,
            command: env.command,
            selection: Selection {
                split: self.split.clone(),
                tasks: self.tasks.iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
                variations: self.variations.clone(),
                per_task: self.per_task,
                episodes: self.episodes,
                repeat: self.repeat,
                seed: self.seed,
            },
            policy: PolicySpec::parse(&self.policy),
            expert_labels: self.expert_labels,
            model: self.model,
            admissible: !self.no_admissible,
            sampling: self.temperature.map(|t| Sampling {
                temperature: Some(t),
                top_p: self.top_p,
                seed: None,
                max_tokens: None,
            }),
            jobs: self.jobs,
            max_steps: self.max_steps,
            episode_timeout: self.episode_timeout.map(|s| seconds("episode-timeout", s)).transpose()?,
            call_timeout: seconds("call-timeout", self.call_timeout)?,
            startup_timeout: seconds("startup-timeout", self.startup_timeout)?,
            reset_options: reset_options(&self.reset_options)?,
            record: if self.no_record {
                RecordTarget::Off
            } else {
                RecordTarget::File {
                    path: self.record.clone(),
                    resume: self.resume,
                    overwrite: self.overwrite,
                    max_observation_bytes: self.max_observation_bytes,
                }
            },
            progress_bar: !self.quiet,
            only: self.only_episodes.as_deref().map(external::read_episode_ids).transpose()?,
            mode: match (&self.report_from, self.print_plan) {
                (Some(path), _) => RunMode::Report(ExternalReport::read(path)?),
                (None, true) => RunMode::PrintPlan,
                (None, false) => RunMode::Play,
            },
        })
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    // A report of a driver's recording plays nothing: no plan line to announce.
    let reporting = args.report_from.is_some();
    let outcome = runner::run(config, |p| {
        if reporting {
            return;
        }
        let record = p.record.as_ref().map_or_else(|| "off".to_string(), |r| r.display().to_string());
        eprintln!(
            "plan: {} episodes of {} ({} split): {} already recorded, {} to run with {} job(s); recording: {record}",
            p.planned, p.env, p.split, p.already_recorded, p.to_run, p.jobs
        );
    })
    .await?;
    if let Some(listing) = &outcome.listing {
        println!("{}", serde_json::to_string_pretty(listing)?);
        return Ok(ExitCode::SUCCESS);
    }
    let s = &outcome.summary;
    if args.json {
        println!("{}", serde_json::to_string_pretty(s)?);
    } else {
        print!("{}", s.table());
    }
    if let Some(sig) = outcome.interrupted_by {
        eprintln!("interrupted: {} of {} episodes have results", s.totals.episodes, s.planned);
        return Ok(ExitCode::from(u8::try_from(128 + sig).unwrap_or(1)));
    }
    if let Some(reason) = &outcome.aborted {
        eprintln!("error: the run stopped with {} episodes not run: {reason}", s.not_run);
        return Ok(ExitCode::FAILURE);
    }
    if let Some(min) = args.min_success {
        if s.totals.success_rate < min {
            eprintln!("success rate {:.3} is below --min-success {min}", s.totals.success_rate);
            return Ok(ExitCode::from(2));
        }
    }
    if let Some(max) = args.max_failed {
        if s.totals.failed > max {
            eprintln!("{} episodes failed, more than --max-failed {max}: see `failures` above", s.totals.failed);
            return Ok(ExitCode::from(2));
        }
    }
    Ok(ExitCode::SUCCESS)
}
