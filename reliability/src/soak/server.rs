//! A `stepwire serve` child: started, watched (its stderr is drained and scanned for panics),
//! stopped.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// A running `stepwire serve`.
pub struct Server {
    pub child: Child,
    pub pid: u32,
    /// Lines of its stderr that report a panic.
    pub panics: Arc<AtomicU64>,
}

/// `stepwire serve <args>`, its stdin and stdout piped when `stdio` (the host speaks on them).
pub fn spawn(stepwire: &Path, args: &[&str], stdio: bool) -> anyhow::Result<Server> {
    let pipe = || if stdio { Stdio::piped() } else { Stdio::null() };
    let child = Command::new(stepwire)
        .arg("serve")
        .args(args)
        .env_remove("STEPWIRE_TOKEN")
        .stdin(pipe())
        .stdout(pipe())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", stepwire.display()))?;
    let pid = child.id().context("the server has no pid")?;
    Ok(Server { child, pid, panics: Arc::new(AtomicU64::new(0)) })
}

impl Server {
    /// Reads stderr until `wanted` matches a line (returning its value), then keeps draining it
    /// in the background so the server never blocks on a full pipe.
    pub async fn watch_stderr<T>(&mut self, wanted: impl Fn(&str) -> Option<T>) -> anyhow::Result<T> {
        let stderr = self.child.stderr.take().context("stderr already taken")?;
        let mut lines = BufReader::new(stderr).lines();
        let found = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                note_line(&line, &self.panics);
                if let Some(v) = wanted(&line) {
                    return anyhow::Ok(v);
                }
            }
            anyhow::bail!("stepwire serve exited before it was ready")
        })
        .await
        .context("stepwire serve was not ready within 60 s")??;
        tokio::spawn(drain(lines, self.panics.clone()));
        Ok(found)
    }

    /// Drains stderr in the background (scanning it for panics).
    pub fn drain_stderr(&mut self) {
        if let Some(stderr) = self.child.stderr.take() {
            tokio::spawn(drain(BufReader::new(stderr).lines(), self.panics.clone()));
        }
    }

    pub fn panic_lines(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// Ends the server: `stop` first (SIGINT, or closing stdin), then SIGKILL after 10 s.
    pub async fn stop(mut self, signal: Option<nix::sys::signal::Signal>) -> Option<std::process::ExitStatus> {
        if let Some(sig) = signal {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid as i32), sig);
        }
        drop(self.child.stdin.take());
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                tracing::warn!(pid = self.pid, "the server did not stop within 10 s; killing it");
                let _ = self.child.kill().await;
                None
            }
        }
    }
}

fn note_line(line: &str, panics: &AtomicU64) {
    if line.contains("panicked") {
        tracing::error!("server: {line}");
        panics.fetch_add(1, Ordering::Relaxed);
    } else {
        tracing::debug!("server: {line}");
    }
}

async fn drain<R: AsyncRead + Unpin>(mut lines: tokio::io::Lines<BufReader<R>>, panics: Arc<AtomicU64>) {
    while let Ok(Some(line)) = lines.next_line().await {
        note_line(&line, &panics);
    }
}
