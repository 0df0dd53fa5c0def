//! The bridge's OS process: spawned in its own process group, stderr forwarded to `tracing` (in
//! lines of bounded length), and the whole group killed when the client goes away (so a JVM
//! grandchild dies too). A descendant that left the group (`setsid`, a daemon's double fork) is
//! found by a marker in its inherited environment and killed as well.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::process::Command;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::transport::Transport;

/// The Python that runs Python bridges (and the project's Python tools): `$STEPWIRE_PYTHON`,
/// else `<root>/.venv/bin/python` (the project's virtual environment), else `python3`.
pub fn python_interpreter(root: Option<&std::path::Path>) -> OsString {
    if let Some(p) = std::env::var_os("STEPWIRE_PYTHON").filter(|p| !p.is_empty()) {
        return p;
    }
    if let Some(venv) = root.map(|r| r.join(".venv/bin/python")).filter(|p| p.exists()) {
        return venv.into_os_string();
    }
    "python3".into()
}

/// What to run: program, arguments, extra environment variables, working directory.
#[derive(Debug, Clone)]
pub struct BridgeCommand {
    /// A name for logs and error messages; the program's file name by default.
    pub name: String,
    pub program: OsString,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: Option<PathBuf>,
}

impl BridgeCommand {
    pub fn new(program: impl Into<OsString>) -> Self {
        let program = program.into();
        let name = PathBuf::from(&program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "bridge".into());
        BridgeCommand { name, program, args: Vec::new(), env: Vec::new(), cwd: None }
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
}

/// A running bridge process.
pub(crate) struct BridgeProcess {
    pub name: String,
    pub pid: Option<u32>,
    /// Set once the process has exited; a task owns the child and waits on it.
    status: watch::Receiver<Option<ExitStatus>>,
    tail: Arc<Mutex<VecDeque<String>>>,
    stderr_done: CancellationToken,
    /// `NAME=value` set in the bridge's environment, inherited by everything it starts.
    pub(crate) marker: String,
}

/// The environment variable that marks a bridge's process tree.
pub const TREE_MARKER: &str = "STEPWIRE_BRIDGE_TREE";

/// Longest stderr line forwarded whole; longer runs without a newline are forwarded in pieces,
/// so a bridge that writes megabytes without a newline costs no more memory than this.
const MAX_STDERR_LINE: usize = 16 * 1024;

fn new_marker() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}.{n}.{nanos}", std::process::id())
}

impl BridgeProcess {
    /// Spawns `cmd` with piped stdio; returns the process and a transport over its pipes.
    pub fn spawn(cmd: &BridgeCommand, tail_lines: usize) -> std::io::Result<(Self, Transport)> {
        let marker = new_marker();
        let mut command = Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .env(TREE_MARKER, &marker)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        if let Some(dir) = &cmd.cwd {
            command.current_dir(dir);
        }
        let mut child = command.spawn()?;
        let transport = Transport::child(&mut child).ok_or_else(|| std::io::Error::other("child pipes missing"))?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_done = CancellationToken::new();
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward_stderr(cmd.name.clone(), stderr, tail.clone(), tail_lines, stderr_done.clone()));
        } else {
            stderr_done.cancel();
        }
        let pid = child.id();
        let (status_tx, status) = watch::channel(None);
        let name = cmd.name.clone();
        tokio::spawn(async move {
            match child.wait().await {
                Ok(s) => {
                    tracing::debug!(bridge = name, "bridge process exited: {s}");
                    let _ = status_tx.send(Some(s));
                }
                Err(e) => tracing::error!(bridge = name, "cannot wait for the bridge process: {e}"),
            }
        });
        let marker = format!("{TREE_MARKER}={marker}");
        let process = BridgeProcess { name: cmd.name.clone(), pid, status, tail, stderr_done, marker };
        Ok((process, transport))
    }

    /// The exit status, waiting at most `wait` for the process to end.
    pub async fn exit_status(&self, wait: Duration) -> Option<ExitStatus> {
        let mut rx = self.status.clone();
        let status = tokio::time::timeout(wait, rx.wait_for(Option::is_some)).await.ok()?.ok()?;
        *status
    }

    /// A receiver that sees the exit status once the process has ended.
    pub fn status_watch(&self) -> watch::Receiver<Option<ExitStatus>> {
        self.status.clone()
    }

    /// The last stderr lines, once stderr has ended (or after `wait`).
    pub async fn stderr_tail(&self, wait: Duration) -> Vec<String> {
        let _ = tokio::time::timeout(wait, self.stderr_done.cancelled()).await;
        self.tail.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    /// SIGKILL to the bridge's whole process group and to every process carrying its marker.
    pub fn kill_group(&self) {
        kill_group(self.pid);
        kill_marked(&self.marker);
    }

    /// Kills the group and reaps the child.
    pub async fn kill(&self) -> Option<ExitStatus> {
        self.kill_group();
        self.exit_status(Duration::from_secs(5)).await
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        // The child itself is killed by kill_on_drop; this reaches its children too.
        self.kill_group();
    }
}

async fn forward_stderr(
    name: String,
    stderr: tokio::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<String>>>,
    keep: usize,
    done: CancellationToken,
) {
    let mut reader = tokio::io::BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match read_line_capped(&mut reader, &mut buf, MAX_STDERR_LINE).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                tracing::info!(target: "bridge", bridge = %name, "{line}");
                let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                if tail.len() == keep {
                    tail.pop_front();
                }
                if keep > 0 {
                    tail.push_back(line);
                }
            }
        }
    }
    done.cancel();
}

/// Reads up to and including the next newline, or `max` bytes, whichever comes first.
async fn read_line_capped(
    reader: &mut (impl AsyncBufRead + Unpin),
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<usize> {
    let start = buf.len();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(buf.len() - start);
        }
        let room = max.saturating_sub(buf.len() - start);
        let (take, done) = match available.iter().take(room).position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len().min(room), available.len() >= room),
        };
        buf.extend_from_slice(&available[..take]);
        reader.consume(take);
        if done {
            return Ok(buf.len() - start);
        }
    }
}

/// SIGKILL to every process whose environment holds `marker` (`NAME=value`): what a bridge
/// started, even outside its process group. Linux only (reads `/proc/<pid>/environ`).
pub(crate) fn kill_marked(marker: &str) {
    #[cfg(target_os = "linux")]
    {
        let Ok(entries) = std::fs::read_dir("/proc") else { return };
        let me = std::process::id();
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
            if pid as u32 == me {
                continue;
            }
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
            if environ.split(|&b| b == 0).any(|var| var == marker.as_bytes()) {
                use nix::sys::signal::{kill, Signal};
                tracing::debug!(pid, "killing a process the bridge left outside its group");
                let _ = kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = marker;
}

/// SIGKILL to the process group led by `pid` (the bridge was spawned as a group leader).
pub(crate) fn kill_group(pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        use nix::sys::signal::{killpg, Signal};
        // ESRCH (group already gone) is the normal case after a clean exit.
        let _ = killpg(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    }
    #[cfg(not(unix))]
    let _ = pid;
}
