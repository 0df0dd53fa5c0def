//! `stepwire run` as the chaos driver starts it: the same plan and recording every time, with
//! `--resume`, its output in files of the work directory.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::{Child, Command};

use super::bridges::RUN_TAG;
use super::wrapper::STEP_DELAY_VAR;

/// Everything that stays the same between the runs of one chaos session.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub stepwire: PathBuf,
    /// The `--env` command line (the wrapper around the lockbox bridge).
    pub env: String,
    pub tag: String,
    pub work_dir: PathBuf,
    pub per_task: u64,
    pub repeat: u32,
    pub jobs: usize,
    pub call_timeout_s: f64,
}

/// One `stepwire run` process.
pub struct Runner {
    pub child: Child,
    pub pid: u32,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    started: Instant,
}

impl RunSpec {
    /// Starts `stepwire run ... --record <record> [--resume]` with env/step delayed by `delay_ms`.
    pub fn start(&self, name: &str, record: &Path, resume: bool, delay_ms: u64) -> anyhow::Result<Runner> {
        let mut args = self.args(record);
        if resume {
            args.push("--resume".into());
        }
        self.start_with(name, Command::new(&self.stepwire).args(&args), delay_ms)
    }

    /// The arguments of `stepwire run` for this plan and `record`.
    pub fn args(&self, record: &Path) -> Vec<String> {
        [
            "run",
            "--env",
            &self.env,
            "--policy",
            "expert",
            "--per-task",
            &self.per_task.to_string(),
            "--repeat",
            &self.repeat.to_string(),
            "--jobs",
            &self.jobs.to_string(),
            "--call-timeout",
            &self.call_timeout_s.to_string(),
            "--startup-timeout",
            "5",
            "--record",
            &record.display().to_string(),
            "--json",
            "--quiet",
        ]
        .map(String::from)
        .to_vec()
    }

    /// Starts `command` tagged as part of this chaos session, its output in `<name>.out/.err`.
    pub fn start_with(&self, name: &str, command: &mut Command, delay_ms: u64) -> anyhow::Result<Runner> {
        let stdout = self.work_dir.join(format!("{name}.out"));
        let stderr = self.work_dir.join(format!("{name}.err"));
        let child = command
            .env(RUN_TAG, &self.tag)
            .env(STEP_DELAY_VAR, delay_ms.to_string())
            .env("STEPWIRE_LOG", "warn")
            .current_dir(&self.work_dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout)?)
            .stderr(std::fs::File::create(&stderr)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.stepwire.display()))?;
        let pid = child.id().context("no pid")?;
        Ok(Runner { child, pid, stdout, stderr, started: Instant::now() })
    }
}

impl Runner {
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until the run has announced its plan (its bridges are up and its recording open);
    /// `false` if it exited first or `wait` passed.
    pub async fn wait_for_plan(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if self.stderr_text().contains("plan: ") {
                return true;
            }
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, then reap it.
    pub async fn kill(mut self) -> Duration {
        let lived = self.started.elapsed();
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        lived
    }

    /// Waits for the run to end by itself (SIGKILL after `wait`): its status and stdout.
    pub async fn finish(mut self, wait: Duration) -> (Option<ExitStatus>, String, String) {
        let status = match tokio::time::timeout(wait, self.child.wait()).await {
            Ok(s) => s.ok(),
            Err(_) => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                None
            }
        };
        let stdout = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        (status, stdout, self.stderr_text())
    }
}
