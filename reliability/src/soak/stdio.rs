//! The stdio target: one `stepwire serve --stdio` child, every session a task issuing requests
//! on its one connection, as a host that multiplexes its agents would.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use stepwire_sdk::transport::{Transport, TransportReader, TransportWriter};
use tokio::sync::oneshot;

use super::messages::{self, Answer, Episode};
use super::{measure, server, SoakArgs, TargetOutcome};
use crate::stats::Tally;
use crate::verdict::Criteria;

const ANSWER_WAIT: Duration = Duration::from_secs(30);

pub async fn soak(args: &SoakArgs, tally: Arc<Tally>) -> anyhow::Result<TargetOutcome> {
    let stepwire = crate::binaries::locate(args.stepwire.as_deref(), "stepwire", "stepwire-runtime")?;
    let limit = args.max_message_bytes.to_string();
    let mut server =
        server::spawn(&stepwire, &["--stdio", "--policy", &args.policy, "--max-message-bytes", &limit], true)?;
    server.drain_stderr();
    let transport = Transport::child(&mut server.child).ok_or_else(|| anyhow::anyhow!("no pipes to the server"))?;
    let peer = Peer::start(transport, tally.clone());

    // Lifecycle and one priming step before the baseline.
    match peer.call(messages::initialize, None).await {
        Ok(Answer::Result(r)) if r["protocolVersion"] == 1 => {}
        other => anyhow::bail!("initialize failed: {other:?}"),
    }
    peer.notify(messages::initialized()).await.map_err(anyhow::Error::msg)?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let episode = Episode::new(&mut rng);
    let primed = peer.call(|id| messages::request(id, "agent/step", episode.params(&mut rng)), None).await;
    anyhow::ensure!(matches!(primed, Ok(Answer::Result(_))), "the priming step failed: {primed:?}");

    let duration = Duration::from_secs(args.duration);
    let measured = measure(server.pid, duration, |deadline| {
        let tasks: Vec<_> = (0..args.sessions)
            .map(|i| {
                let seed = args.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
                tokio::spawn(session(peer.clone(), tally.clone(), seed, deadline))
            })
            .collect();
        async move {
            for t in tasks {
                t.await?;
            }
            anyhow::Ok(())
        }
    })
    .await?;

    // The host is done: shutdown, exit, and the server must end with 0.
    let mut criteria = Criteria::default();
    let shutdown = peer.call(messages::shutdown, None).await;
    let answered_null = matches!(shutdown, Ok(Answer::Result(Value::Null)));
    criteria.check(
        "shutdown answered null",
        answered_null,
        if answered_null { "null".to_string() } else { format!("{shutdown:?}") },
    );
    let _ = peer.notify(messages::notification("exit", Value::Null)).await;
    let pid = server.pid;
    let panics = server.panic_lines();
    let status = server.stop(None).await;
    let exit = status.map_or_else(|| "killed after 10 s".to_string(), |s| s.to_string());
    criteria.check("exit 0 after shutdown and exit", status.is_some_and(|s| s.code() == Some(0)), exit);
    criteria.check("no panic", panics == 0, format!("{panics} panic lines on the server's stderr"));
    let notes = BTreeMap::from([("serverExit".to_string(), json!(status.map(|s| s.to_string())))]);
    Ok(TargetOutcome { pid, measured, criteria, notes })
}

/// One of the host's agents: steps, steps cancelled at once, and invalid params.
async fn session(peer: Arc<Peer>, tally: Arc<Tally>, seed: u64, deadline: Instant) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut episode = Episode::new(&mut rng);
    while Instant::now() < deadline {
        let roll = rng.random_range(0..100);
        tally.request();
        let started = Instant::now();
        if roll < 65 {
            match peer.call(|id| messages::request(id, "agent/step", episode.params(&mut rng)), None).await {
                Ok(Answer::Result(r)) => match messages::step_result(r) {
                    Ok(r) => {
                        tally.timed("step", started.elapsed());
                        episode.advance(&r, &mut rng);
                    }
                    Err(e) => tally.unexpected(e),
                },
                other => tally.unexpected(format!("step: {other:?}")),
            }
        } else if roll < 85 {
            let cancel = Some(messages::cancel as fn(i64) -> Value);
            match peer.call(|id| messages::request(id, "agent/step", episode.params(&mut rng)), cancel).await {
                Ok(Answer::Result(r)) => match messages::step_result(r) {
                    Ok(_) => tally.expected("cancel_after_result"),
                    Err(e) => tally.unexpected(e),
                },
                Ok(Answer::Error(messages::REQUEST_CANCELLED, _)) => tally.expected("cancelled"),
                other => tally.unexpected(format!("cancelled step: {other:?}")),
            }
        } else {
            match peer.call(messages::invalid_step, None).await {
                Ok(Answer::Error(messages::INVALID_PARAMS, _)) => tally.expected("invalid_params"),
                other => tally.unexpected(format!("invalid params: {other:?}")),
            }
        }
    }
}

/// A minimal JSON-RPC client on the child's pipes: ids of its own choosing (so it can cancel
/// them), answers routed to their callers by id.
struct Peer {
    writer: tokio::sync::Mutex<TransportWriter>,
    pending: Mutex<HashMap<i64, oneshot::Sender<Value>>>,
    next_id: AtomicI64,
}

impl Peer {
    fn start(transport: Transport, tally: Arc<Tally>) -> Arc<Peer> {
        let (reader, writer) = transport.split();
        let peer = Arc::new(Peer {
            writer: tokio::sync::Mutex::new(writer),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicI64::new(1),
        });
        tokio::spawn(read_answers(reader, Arc::downgrade(&peer), tally));
        peer
    }

    /// Sends the request `build(id)` (then `follow(id)`, e.g. its cancel) and waits for its answer.
    async fn call(&self, build: impl FnOnce(i64) -> Value, follow: Option<fn(i64) -> Value>) -> Result<Answer, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(id, tx);
        self.notify(build(id)).await?;
        if let Some(follow) = follow {
            self.notify(follow(id)).await?;
        }
        let answer = match tokio::time::timeout(ANSWER_WAIT, rx).await {
            Ok(Ok(v)) => v,
            Ok(Err(_)) => return Err("the connection ended before the answer".into()),
            Err(_) => {
                self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                return Err(format!("no answer to id {id} within {ANSWER_WAIT:?}"));
            }
        };
        messages::answer(&answer, Some(id))
    }

    /// Writes one message.
    async fn notify(&self, msg: Value) -> Result<(), String> {
        self.writer.lock().await.send(msg).await.map_err(|e| format!("writing to the server: {e}"))
    }
}

async fn read_answers(mut reader: TransportReader, peer: std::sync::Weak<Peer>, tally: Arc<Tally>) {
    while let Some(frame) = reader.recv().await {
        let Some(peer) = peer.upgrade() else { return };
        match frame {
            Ok(Ok(msg)) => {
                let waiter = msg
                    .get("id")
                    .and_then(Value::as_i64)
                    .and_then(|id| peer.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id));
                match waiter {
                    Some(tx) => {
                        let _ = tx.send(msg);
                    }
                    None => tally.unexpected(format!("a message answering nothing: {}", messages::brief(&msg))),
                }
            }
            Ok(Err(e)) => tally.unexpected(format!("a bad frame from the server: {e}")),
            Err(e) => {
                tally.unexpected(format!("the server's output broke: {e}"));
                return;
            }
        }
    }
}
