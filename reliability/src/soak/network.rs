//! The network target: WebSocket sessions and HTTP POSTs against `stepwire serve --listen`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use super::messages::{self, Answer, Episode};
use super::server::{self, Server};
use super::{measure, SoakArgs, TargetOutcome};
use crate::stats::Tally;
use crate::verdict::Criteria;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Longest wait for any one answer before it counts as lost.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// One thing a session does next.
#[derive(Debug, Clone, Copy)]
enum Op {
    Step,
    StepThenCancel,
    HttpStep,
    InvalidParams,
    DropMidRequest,
    Oversized,
}

/// The mix, in relative weights.
const MIX: [(Op, u32); 6] = [
    (Op::Step, 50),
    (Op::StepThenCancel, 15),
    (Op::HttpStep, 12),
    (Op::InvalidParams, 10),
    (Op::DropMidRequest, 7),
    (Op::Oversized, 6),
];

fn pick(rng: &mut impl Rng) -> Op {
    let total: u32 = MIX.iter().map(|(_, w)| w).sum();
    let mut n = rng.random_range(0..total);
    for (op, w) in MIX {
        if n < w {
            return op;
        }
        n -= w;
    }
    Op::Step
}

pub async fn soak(args: &SoakArgs, tally: Arc<Tally>) -> anyhow::Result<TargetOutcome> {
    let stepwire = crate::binaries::locate(args.stepwire.as_deref(), "stepwire", "stepwire-runtime")?;
    let limit = args.max_message_bytes.to_string();
    let serve_args = ["--listen", "127.0.0.1:0", "--policy", &args.policy, "--max-message-bytes", &limit];
    let mut server = server::spawn(&stepwire, &serve_args, false)?;
    let addr = server
        .watch_stderr(|line| {
            line.split("listening on ws://").nth(1).and_then(|r| r.split_whitespace().next()).map(String::from)
        })
        .await?;
    tracing::info!(%addr, pid = server.pid, "server listening");

    // One priming session so one-time setup is not counted against the baseline.
    let primer = Arc::new(Tally::default());
    Session::new(&addr, primer.clone(), args, u64::MAX).prime().await;
    anyhow::ensure!(primer.snapshot().unexpected == 0, "the priming session failed: {:?}", primer.snapshot());

    let duration = Duration::from_secs(args.duration);
    let measured = measure(server.pid, duration, |deadline| {
        let sessions: Vec<_> = (0..args.sessions)
            .map(|i| tokio::spawn(Session::new(&addr, tally.clone(), args, i as u64).run(deadline)))
            .collect();
        async move {
            for s in sessions {
                s.await?;
            }
            anyhow::Ok(())
        }
    })
    .await?;
    finish(server, measured).await
}

async fn finish(server: Server, measured: super::Measured) -> anyhow::Result<TargetOutcome> {
    let pid = server.pid;
    let mut criteria = Criteria::default();
    let alive = crate::procfs::alive(pid);
    criteria.check("server alive at the end", alive, if alive { "running" } else { "exited" });
    let panics = server.panic_lines();
    criteria.check("no panic", panics == 0, format!("{panics} panic lines on the server's stderr"));
    let status = server.stop(Some(nix::sys::signal::Signal::SIGINT)).await;
    let mut notes = std::collections::BTreeMap::new();
    notes.insert("serverExitAfterSigint".into(), json!(status.map(|s| s.to_string())));
    Ok(TargetOutcome { pid, measured, criteria, notes })
}

/// One client: a WebSocket it reconnects whenever the mix ends one, plus HTTP POSTs.
struct Session {
    addr: String,
    tally: Arc<Tally>,
    rng: StdRng,
    ws: Option<Ws>,
    next_id: i64,
    episode: Episode,
    limit: usize,
}

impl Session {
    fn new(addr: &str, tally: Arc<Tally>, args: &SoakArgs, index: u64) -> Session {
        let mut rng = StdRng::seed_from_u64(args.seed.wrapping_mul(1_000_003).wrapping_add(index));
        let episode = Episode::new(&mut rng);
        Session { addr: addr.to_string(), tally, rng, ws: None, next_id: 1, episode, limit: args.max_message_bytes }
    }

    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    async fn prime(mut self) {
        if self.connect().await {
            self.play(Op::Step).await;
            self.play(Op::HttpStep).await;
        }
        self.close().await;
    }

    async fn run(mut self, deadline: Instant) {
        while Instant::now() < deadline {
            if self.ws.is_none() && !self.connect().await {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let op = pick(&mut self.rng);
            self.play(op).await;
        }
        self.close().await;
    }

    /// Opens the WebSocket and runs `initialize` / `initialized`; false (counted) on failure.
    async fn connect(&mut self) -> bool {
        // No Nagle: a host sends small messages and waits for each answer.
        let url = format!("ws://{}", self.addr);
        let ws = match tokio_tungstenite::connect_async_with_config(url, None, true).await {
            Ok((ws, _)) => ws,
            Err(e) => {
                self.tally.unexpected(format!("WebSocket connect failed: {e}"));
                return false;
            }
        };
        self.ws = Some(ws);
        let id = self.id();
        self.tally.request();
        match self.ask(&messages::initialize(id)).await.map(|m| m.map(|m| messages::answer(&m, Some(id)))) {
            Ok(Some(Ok(Answer::Result(r)))) if r["protocolVersion"] == 1 => self.tally.expected("initialize"),
            other => {
                self.fail(format!("initialize: {other:?}"));
                return false;
            }
        }
        if let Err(e) = self.send(&messages::initialized()).await {
            self.fail(format!("initialized: {e}"));
            return false;
        }
        true
    }

    async fn play(&mut self, op: Op) {
        match op {
            Op::Step => {
                let id = self.id();
                let started = Instant::now();
                if let Some(answer) = self.exchange("agent/step", id, None).await {
                    match answer {
                        Answer::Result(r) => self.step_done(r, "step", started),
                        Answer::Error(code, e) => self.tally.unexpected(format!("step answered {code}: {e}")),
                    }
                }
            }
            Op::StepThenCancel => {
                let id = self.id();
                let started = Instant::now();
                if let Some(answer) = self.exchange("agent/step", id, Some(messages::cancel(id))).await {
                    match answer {
                        // The step finished before the cancel arrived: its result is the answer.
                        Answer::Result(r) => self.step_done(r, "cancel_after_result", started),
                        Answer::Error(messages::REQUEST_CANCELLED, _) => self.tally.expected("cancelled"),
                        Answer::Error(code, e) => self.tally.unexpected(format!("cancelled step answered {code}: {e}")),
                    }
                }
            }
            Op::InvalidParams => {
                let id = self.id();
                if let Some(answer) = self.exchange("invalid", id, None).await {
                    match answer {
                        Answer::Error(messages::INVALID_PARAMS, _) => self.tally.expected("invalid_params"),
                        other => self.tally.unexpected(format!("invalid params answered {other:?}")),
                    }
                }
            }
            Op::DropMidRequest => {
                let id = self.id();
                let step = messages::request(id, "agent/step", self.episode.params(&mut self.rng));
                self.tally.request();
                match self.send(&step).await {
                    Ok(()) => {
                        // Gone without reading the answer or closing: the server must cope.
                        self.ws = None;
                        self.tally.expected("dropped_mid_request");
                    }
                    Err(e) => self.fail(format!("sending before a drop: {e}")),
                }
            }
            Op::Oversized => self.oversized().await,
            Op::HttpStep => self.http_step().await,
        }
    }

    /// Sends `method`'s request (or the invalid one), then `after` if any, and waits for the
    /// answer to `id`; `None` when something went wrong (already counted).
    async fn exchange(&mut self, method: &str, id: i64, after: Option<Value>) -> Option<Answer> {
        let msg = match method {
            "invalid" => messages::invalid_step(id),
            _ => messages::request(id, method, self.episode.params(&mut self.rng)),
        };
        self.tally.request();
        if let Err(e) = self.send(&msg).await {
            self.fail(format!("{method}: sending: {e}"));
            return None;
        }
        if let Some(after) = after {
            if let Err(e) = self.send(&after).await {
                self.fail(format!("{method}: sending the follow-up: {e}"));
                return None;
            }
        }
        match self.recv().await {
            Ok(Some(m)) => match messages::answer(&m, Some(id)) {
                Ok(a) => Some(a),
                Err(e) => {
                    self.tally.unexpected(format!("{method}: {e}"));
                    None
                }
            },
            Ok(None) => {
                self.fail(format!("{method}: the server closed the connection instead of answering"));
                None
            }
            Err(e) => {
                self.fail(format!("{method}: {e}"));
                None
            }
        }
    }

    fn step_done(&mut self, result: Value, kind: &str, started: Instant) {
        match messages::step_result(result) {
            Ok(r) => {
                self.tally.timed(kind, started.elapsed());
                self.episode.advance(&r, &mut self.rng);
            }
            Err(e) => self.tally.unexpected(e),
        }
    }

    /// Over --max-message-bytes: answered -32600 (id null), then the server closes.
    async fn oversized(&mut self) {
        let id = self.id();
        let big = messages::oversized_step(id, self.limit);
        self.tally.request();
        if let Err(e) = self.send(&big).await {
            self.fail(format!("oversized: sending: {e}"));
            return;
        }
        let answered = match self.recv().await {
            Ok(Some(m)) => messages::answer(&m, None),
            other => Err(format!("no answer before closing: {other:?}")),
        };
        match answered {
            Ok(Answer::Error(messages::INVALID_REQUEST, _)) => {}
            other => {
                self.fail(format!("oversized: expected -32600, got {other:?}"));
                return;
            }
        }
        // Then the end of the connection: a close frame, end of stream or a reset all count.
        match self.recv().await {
            Ok(None) | Err(_) => self.tally.expected("oversized_then_closed"),
            Ok(Some(m)) => {
                self.tally.unexpected(format!("oversized: the connection stayed open: {}", messages::brief(&m)))
            }
        }
        self.ws = None;
    }

    /// One stateless `agent/step` over a plain HTTP/1.1 POST.
    async fn http_step(&mut self) {
        let id = self.id();
        let body = messages::request(id, "agent/step", self.episode.params(&mut self.rng)).to_string();
        self.tally.request();
        let started = Instant::now();
        match http_post(&self.addr, &body).await {
            Ok((200, text)) => match serde_json::from_str::<Value>(&text).map_err(|e| e.to_string()) {
                Ok(v) => match messages::answer(&v, Some(id)) {
                    Ok(Answer::Result(r)) => self.step_done(r, "http_step", started),
                    other => self.tally.unexpected(format!("HTTP step answered {other:?}")),
                },
                Err(e) => self.tally.unexpected(format!("HTTP step body is not JSON ({e}): {text:.200}")),
            },
            Ok((status, text)) => self.tally.unexpected(format!("HTTP step got {status}: {text:.200}")),
            Err(e) => self.tally.unexpected(format!("HTTP step: {e}")),
        }
    }

    /// `shutdown` (answered null), then a clean close.
    async fn close(&mut self) {
        if self.ws.is_none() {
            return;
        }
        let id = self.id();
        self.tally.request();
        match self.ask(&messages::shutdown(id)).await.map(|m| m.map(|m| messages::answer(&m, Some(id)))) {
            Ok(Some(Ok(Answer::Result(Value::Null)))) => self.tally.expected("shutdown"),
            other => self.tally.unexpected(format!("shutdown: {other:?}")),
        }
        if let Some(mut ws) = self.ws.take() {
            let _ = ws.close(None).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), async { while ws.next().await.is_some() {} }).await;
        }
    }

    /// Counts an unexpected failure that leaves the connection unusable, and drops it.
    fn fail(&mut self, what: String) {
        self.tally.unexpected(what);
        self.ws = None;
    }

    async fn ask(&mut self, msg: &Value) -> Result<Option<Value>, String> {
        self.send(msg).await?;
        self.recv().await
    }

    async fn send(&mut self, msg: &Value) -> Result<(), String> {
        let ws = self.ws.as_mut().ok_or("not connected")?;
        ws.send(Message::text(msg.to_string())).await.map_err(|e| e.to_string())
    }

    /// The next JSON message; `None` when the server closed the connection.
    async fn recv(&mut self) -> Result<Option<Value>, String> {
        let ws = self.ws.as_mut().ok_or("not connected")?;
        let read = async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        return serde_json::from_str(&t).map(Some).map_err(|e| format!("not JSON ({e}): {t:.200}"))
                    }
                    Some(Ok(Message::Close(_))) | None => return Ok(None),
                    Some(Ok(Message::Binary(_))) => return Err("a binary message".to_string()),
                    Some(Ok(_)) => continue, // ping, pong
                    Some(Err(e)) => return Err(format!("WebSocket error: {e}")),
                }
            }
        };
        tokio::time::timeout(ANSWER_WAIT, read).await.map_err(|_| format!("no answer within {ANSWER_WAIT:?}"))?
    }
}

/// A raw HTTP/1.1 POST of `body` to `/`; the status and the body of the response.
async fn http_post(addr: &str, body: &str) -> Result<(u16, String), String> {
    let exchange = async {
        let mut tcp = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
        tcp.write_all(body.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await.map_err(|e| format!("read: {e}"))?;
        Ok::<_, String>(raw)
    };
    let raw = tokio::time::timeout(ANSWER_WAIT, exchange).await.map_err(|_| "no HTTP answer in time".to_string())??;
    let text = String::from_utf8_lossy(&raw);
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("no HTTP status line")?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no end of headers")?;
    // hyper may answer in chunks when it does not know the length in advance.
    let chunked =
        head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_string() };
    Ok((status, body))
}

/// The body of a chunked HTTP/1.1 response.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n"), "{\"a\":1}");
    }

    #[test]
    fn the_mix_picks_every_op() {
        let mut rng = StdRng::seed_from_u64(3);
        let picks: Vec<String> = (0..2000).map(|_| format!("{:?}", pick(&mut rng))).collect();
        for (op, _) in MIX {
            assert!(picks.contains(&format!("{op:?}")), "{op:?} never picked");
        }
    }
}
