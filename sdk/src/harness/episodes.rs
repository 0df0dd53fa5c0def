//! What the harness checks for every bridge, so that an author writes only the game: `env/reset`
//! params against the announced tasks, splits, variation counts and reset options, and the
//! episode's state (no step before a reset, none after `done`, none after a crash).
//!
//! The same rules as the Python SDK's, held to by the shared cases in `tests/sdk-cases/`.

use serde_json::{json, Value};

use crate::environment::{EnvError, Environment};
use crate::protocol::{ErrorCode, ResetParams, ResetResult, RpcError, StepResult, TaskInfo};

/// The split `env/reset` uses when it names none: `train` when the task has it, else its first.
pub const DEFAULT_SPLIT: &str = "train";

pub(crate) struct Episodes {
    /// The reset options the environment announced; others are refused.
    reset_options: Vec<String>,
    /// `env/tasks` as first answered: tasks do not change within a bridge process.
    tasks: Option<Vec<TaskInfo>>,
    /// `None` before the first reset and after a crash; `Some(done)` otherwise.
    current: Option<bool>,
}

impl Episodes {
    pub fn new(reset_options: Vec<String>) -> Self {
        Episodes { reset_options, tasks: None, current: None }
    }

    pub async fn tasks<E: Environment>(&mut self, env: &mut E) -> Result<Vec<TaskInfo>, EnvError> {
        if let Some(tasks) = &self.tasks {
            return Ok(tasks.clone());
        }
        let tasks = env.tasks().await?;
        self.tasks = Some(tasks.clone());
        Ok(tasks)
    }

    /// Checks `p` and fills in its split and variation, so the environment gets concrete ones.
    pub async fn resolve<E: Environment>(&mut self, env: &mut E, mut p: ResetParams) -> Result<ResetParams, EnvError> {
        let known = &self.reset_options;
        let unknown: Vec<&String> = p.options.keys().filter(|k| !known.contains(k)).collect();
        if !unknown.is_empty() {
            return Err(EnvError::InvalidParams(format!(
                "unknown reset option(s) {unknown:?}; this environment understands {known:?}"
            )));
        }
        let tasks = self.tasks(env).await?;
        let Some(task) = tasks.iter().find(|t| t.id == p.task) else {
            let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
            return Err(unknown_task(format!("unknown task `{}`", p.task), json!({ "tasks": ids })));
        };
        let names: Vec<&str> = task.splits.iter().map(|s| s.name.as_str()).collect();
        let split = match p.split.take() {
            Some(s) => s,
            None if names.contains(&DEFAULT_SPLIT) => DEFAULT_SPLIT.to_string(),
            None => names.first().map(|s| s.to_string()).ok_or_else(|| {
                unknown_task(format!("task `{}` has no splits", task.id), json!({ "task": task.id, "splits": [] }))
            })?,
        };
        let Some(info) = task.splits.iter().find(|s| s.name == split) else {
            let data = json!({ "task": task.id, "splits": names });
            return Err(unknown_task(format!("task `{}` has no split `{split}`", task.id), data));
        };
        let count = info.count;
        let range = || json!({ "task": task.id, "split": split, "count": count });
        let variation = match (p.variation, p.seed) {
            _ if count == 0 => {
                return Err(unknown_task(format!("split `{split}` of task `{}` is empty", task.id), range()))
            }
            (Some(v), _) if v >= count => {
                let msg = format!("variation {v} is out of range: split `{split}` of task `{}` has {count}", task.id);
                return Err(unknown_task(msg, range()));
            }
            (Some(v), _) => v,
            (None, Some(seed)) => seed % count,
            (None, None) => unseeded() % count,
        };
        p.split = Some(split);
        p.variation = Some(variation);
        // The old episode is gone, whatever the reset does next.
        self.current = None;
        Ok(p)
    }

    pub fn started(&mut self, reset: &Result<ResetResult, EnvError>) {
        if reset.is_ok() {
            self.current = Some(false);
        }
    }

    /// Whether an episode can take a step (`step`) or be asked about (`admissible`, `expert`).
    pub fn check(&self, step: bool) -> Result<(), EnvError> {
        match self.current {
            None => Err(EnvError::NoEpisode),
            Some(true) if step => Err(EnvError::EpisodeOver),
            Some(_) => Ok(()),
        }
    }

    pub fn stepped(&mut self, step: &Result<StepResult, EnvError>) {
        match step {
            Ok(r) if r.done => self.current = Some(true),
            _ => {}
        }
    }

    /// After any call: a crashed environment has no episode until the next reset.
    pub fn crashed_if<T>(&mut self, result: &Result<T, EnvError>) {
        let crashed = match result {
            Err(EnvError::Crashed(_)) => true,
            Err(EnvError::Rpc(e)) => e.code == ErrorCode::ENVIRONMENT_CRASHED,
            _ => false,
        };
        if crashed {
            self.current = None;
        }
    }
}

/// -31003 with `data` saying what exists.
fn unknown_task(message: String, data: Value) -> EnvError {
    EnvError::Rpc(RpcError::new(ErrorCode::UNKNOWN_TASK, message).with_data(data))
}

/// A variation for a reset that names neither a variation nor a seed: any one will do.
fn unseeded() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}
