//! One bridge process driven at the byte level: the checker must be able to send what a correct
//! client never would (bad frames, requests out of order), so it does not use `BridgeClient`.

use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio_util::codec::FramedRead;

use stepwire_sdk::framing::{frame_bytes, FrameError, LspCodec};
use stepwire_sdk::protocol::methods::{Initialize, RequestMethod};
use stepwire_sdk::protocol::PROTOCOL_VERSION;

use super::schema::{Kind, Schemas};
use super::BridgeSpec;

/// What came back for a request.
#[derive(Debug, Clone)]
pub enum Answer {
    Result(Value),
    Error { code: i64, message: String, data: Option<Value> },
}

impl Answer {
    pub fn code(&self) -> Option<i64> {
        match self {
            Answer::Error { code, .. } => Some(*code),
            Answer::Result(_) => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Answer::Result(v) => format!("a result {}", clip(&v.to_string())),
            Answer::Error { code, message, .. } => format!("error {code} ({message})"),
        }
    }
}

pub fn clip(s: &str) -> String {
    if s.chars().count() > 120 {
        format!("{}...", s.chars().take(120).collect::<String>())
    } else {
        s.to_string()
    }
}

pub struct Session {
    child: Child,
    pid: Option<u32>,
    stdin: Option<ChildStdin>,
    stdout: FramedRead<ChildStdout, LspCodec>,
    schemas: Arc<Schemas>,
    next_id: i64,
    /// Messages read while waiting for something else.
    backlog: VecDeque<Value>,
    /// Protocol violations seen in anything the bridge sent.
    pub violations: Vec<String>,
    /// The method whose answer is awaited, to name it when the bridge hangs.
    pub waiting_for: Option<String>,
    /// The bridge's last stderr lines: a traceback usually says more than any check.
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

/// Stderr lines kept for the report, and the longest line kept whole.
const STDERR_LINES: usize = 12;
const STDERR_LINE_BYTES: usize = 400;

impl Session {
    pub fn spawn(spec: &BridgeSpec, schemas: Arc<Schemas>) -> anyhow::Result<Self> {
        let (program, args) = spec.command.split_first().context("empty bridge command")?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(spec.env.iter().cloned())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        if let Some(dir) = &spec.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().with_context(|| format!("cannot start `{program}`"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("no stdout")?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            let tail = stderr_tail.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::debug!(target: "bridge", "{line}");
                    let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                    if tail.len() == STDERR_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line.chars().take(STDERR_LINE_BYTES).collect());
                }
            });
        }
        Ok(Session {
            pid: child.id(),
            child,
            stdin,
            // Generous: the checker reads whatever the bridge sends.
            stdout: FramedRead::new(stdout, LspCodec::new(256 * 1024 * 1024)),
            schemas,
            next_id: 1,
            backlog: VecDeque::new(),
            violations: Vec::new(),
            waiting_for: None,
            stderr_tail,
        })
    }

    pub fn schemas(&self) -> &Schemas {
        &self.schemas
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("stdin already closed")?;
        stdin.write_all(bytes).await?;
        stdin.flush().await?;
        Ok(())
    }

    pub async fn send(&mut self, msg: &Value) -> anyhow::Result<()> {
        self.send_raw(&frame_bytes(msg.to_string().as_bytes())).await
    }

    pub fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// Sends a request with a fresh id; returns the id.
    pub async fn send_request(&mut self, method: &str, params: Option<Value>) -> anyhow::Result<i64> {
        let id = self.next_id();
        let mut msg = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(p) = params {
            msg["params"] = p;
        }
        self.send(&msg).await?;
        Ok(id)
    }

    pub async fn notify(&mut self, method: &str, params: Option<Value>) -> anyhow::Result<()> {
        let mut msg = json!({"jsonrpc": "2.0", "method": method});
        if let Some(p) = params {
            msg["params"] = p;
        }
        self.send(&msg).await
    }

    /// Sends a request and waits for its answer; a result is checked against the method's schema.
    pub async fn request(&mut self, method: &str, params: Option<Value>) -> anyhow::Result<Answer> {
        let id = self.send_request(method, params).await?;
        self.waiting_for = Some(method.to_string());
        let answer = self.answer_to(&json!(id)).await?;
        self.waiting_for = None;
        if let (Answer::Result(v), Some(kind)) = (&answer, Schemas::result_kind(method)) {
            if let Err(e) = self.schemas.validate(kind, v) {
                self.violations.push(format!("`{method}` result: {e}"));
            }
        }
        Ok(answer)
    }

    /// Like [`Session::request`], but a protocol error is an `Err` naming the method.
    pub async fn call(&mut self, method: &str, params: Option<Value>) -> anyhow::Result<Value> {
        match self.request(method, params).await? {
            Answer::Result(v) => Ok(v),
            other => bail!("`{method}` failed: {}", other.describe()),
        }
    }

    /// The next message; `None` when the bridge closed its stdout.
    pub async fn recv(&mut self) -> anyhow::Result<Option<Value>> {
        if let Some(v) = self.backlog.pop_front() {
            return Ok(Some(v));
        }
        match self.stdout.next().await {
            None => Ok(None),
            Some(Err(fatal)) => {
                let hint = if matches!(fatal, FrameError::BadHeaderLine(_) | FrameError::MissingContentLength) {
                    " (stdout carries the protocol: print and log to stderr; a Python bridge calls \
                     stepwire_bridge.guard_stdio() before importing anything that prints)"
                } else {
                    ""
                };
                self.violations.push(format!("unreadable output: {fatal}{hint}"));
                Ok(None)
            }
            Some(Ok(Err(bad))) => {
                // Whatever it was, an answer is lost: waiting on would only end in a timeout.
                self.violations.push(format!("bad frame from bridge: {bad}"));
                bail!("the bridge sent a frame that is not JSON-RPC ({bad})");
            }
            Some(Ok(Ok(v))) => {
                self.check_message(&v);
                Ok(Some(v))
            }
        }
    }

    fn check_message(&mut self, v: &Value) {
        if let Err(e) = self.schemas.validate(Kind::Message, v) {
            self.violations.push(format!("message {}: {e}", clip(&v.to_string())));
        }
        let has = |k: &str| v.get(k).is_some();
        if !has("method") && has("result") == has("error") {
            self.violations
                .push(format!("a response must carry exactly one of `result` and `error`: {}", clip(&v.to_string())));
        }
    }

    /// Waits for the response with this id; other messages are kept for later.
    pub async fn answer_to(&mut self, id: &Value) -> anyhow::Result<Answer> {
        let mut skipped = Vec::new();
        let found = loop {
            let Some(v) = self.recv().await? else {
                break None;
            };
            if v.get("method").is_none() && v.get("id") == Some(id) {
                break Some(v);
            }
            skipped.push(v);
        };
        self.backlog.extend(skipped);
        let v = found.ok_or_else(|| anyhow!("the bridge closed its output before answering id {id}"))?;
        Ok(to_answer(&v))
    }

    /// `initialize` with our version, then `initialized`.
    pub async fn initialize(&mut self) -> anyhow::Result<Value> {
        let result = self.call(Initialize::NAME, Some(initialize_params(PROTOCOL_VERSION))).await?;
        self.notify("initialized", Some(json!({}))).await?;
        Ok(result)
    }

    /// What the report shows besides the verdict when a check fails: the bridge's exit status
    /// (if it has ended) and its last stderr lines.
    pub fn post_mortem(&mut self) -> String {
        let mut out = String::new();
        if let Ok(Some(status)) = self.child.try_wait() {
            out.push_str(&format!("; the bridge exited ({status})"));
        }
        let tail = self.stderr_tail.lock().unwrap_or_else(|p| p.into_inner());
        if !tail.is_empty() {
            out.push_str("; its last stderr lines:\n    ");
            out.push_str(&tail.iter().cloned().collect::<Vec<_>>().join("\n    "));
        }
        out
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(within, self.child.wait()).await.ok()?.ok()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.and_then(|p| i32::try_from(p).ok()) {
            use nix::sys::signal::{killpg, Signal};
            let _ = killpg(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

pub fn to_answer(v: &Value) -> Answer {
    match v.get("error") {
        Some(e) => Answer::Error {
            code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: e.get("message").and_then(Value::as_str).unwrap_or("").to_string(),
            data: e.get("data").cloned(),
        },
        None => Answer::Result(v.get("result").cloned().unwrap_or(Value::Null)),
    }
}

pub fn initialize_params(version: u32) -> Value {
    json!({
        "protocolVersion": version,
        "clientInfo": {"name": "stepwire check-bridge", "version": env!("CARGO_PKG_VERSION")},
        "capabilities": {}
    })
}
