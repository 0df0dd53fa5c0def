//! The JSON-RPC peer: concurrency, ordering, cancellation, errors, timeouts, peer loss.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use stepwire_sdk::protocol::methods::{EnvStep, EnvTasks, RequestMethod};
use stepwire_sdk::protocol::{RpcError, StepResult, TaskInfo, TasksResult};
use stepwire_sdk::rpc::{
    parse_params, BoxFuture, CallError, Connection, ConnectionOptions, Handler, Methods, NotificationContext,
    RequestContext, Router,
};
use stepwire_sdk::transport::Transport;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

const LIMIT: Duration = Duration::from_secs(5);

struct TestHandler {
    release: Arc<Notify>,
    seen: Arc<Mutex<Vec<i64>>>,
    cancelled: Arc<AtomicBool>,
    /// Notifications named `held` wait here until a permit is added.
    gate: Arc<tokio::sync::Semaphore>,
}

impl Default for TestHandler {
    fn default() -> Self {
        TestHandler {
            release: Default::default(),
            seen: Default::default(),
            cancelled: Default::default(),
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }
}

impl Handler for TestHandler {
    fn request(&self, ctx: RequestContext, params: Option<Value>) -> BoxFuture<Result<Value, RpcError>> {
        let release = self.release.clone();
        let cancelled = self.cancelled.clone();
        Box::pin(async move {
            match ctx.method.as_str() {
                "echo" => Ok(params.unwrap_or(Value::Null)),
                "wait" => {
                    release.notified().await;
                    Ok(json!("released"))
                }
                "release" => {
                    release.notify_one();
                    Ok(json!("ok"))
                }
                "slow" => {
                    // Watched from outside: the connection drops this future once cancelled.
                    let token = ctx.cancel.clone();
                    tokio::spawn(async move {
                        token.cancelled().await;
                        cancelled.store(true, Ordering::SeqCst);
                    });
                    std::future::pending::<()>().await;
                    Ok(json!("never"))
                }
                "typed" => {
                    let p: TaskInfo = parse_params("typed", params)?;
                    Ok(json!(p.id))
                }
                "boom" => panic!("handler blew up"),
                other => Err(RpcError::method_not_found(other)),
            }
        })
    }

    fn notification(&self, _: NotificationContext, method: &str, params: Option<Value>) -> BoxFuture<()> {
        let seen = self.seen.clone();
        let gate = (method == "held").then(|| self.gate.clone());
        Box::pin(async move {
            if let Some(gate) = gate {
                let _open = gate.acquire().await;
            }
            let i = params.and_then(|p| p["i"].as_i64()).unwrap_or(-1);
            // Earlier notifications sleep longer: only in-order handling keeps the order.
            tokio::time::sleep(Duration::from_millis((20 - i.min(20)) as u64)).await;
            seen.lock().unwrap().push(i);
        })
    }
}

fn opts() -> ConnectionOptions {
    ConnectionOptions { name: "test".into(), request_timeout: Some(LIMIT), ..Default::default() }
}

/// A served connection and a client connection, in memory.
fn pair(handler: TestHandler) -> (Connection, Connection) {
    let (a, b) = Transport::pair();
    (Connection::start(a, handler, opts()), Connection::start_client(b, opts()))
}

/// A served connection and the raw transport on the other side.
fn raw(handler: TestHandler) -> (Connection, Transport) {
    let (a, b) = Transport::pair();
    (Connection::start(a, handler, opts()), b)
}

async fn recv(t: &mut Transport) -> Value {
    tokio::time::timeout(LIMIT, t.recv()).await.unwrap().unwrap().unwrap().unwrap()
}

#[tokio::test]
async fn requests_run_concurrently() {
    let (_server, client) = pair(TestHandler::default());
    let c2 = client.clone();
    let waiting = tokio::spawn(async move { c2.request_raw("wait", None, Some(LIMIT)).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // `wait` only returns once `release` has run: both must be in flight together.
    assert_eq!(client.request_raw("release", None, None).await.unwrap(), json!("ok"));
    assert_eq!(waiting.await.unwrap().unwrap(), json!("released"));
}

#[tokio::test]
async fn notifications_are_handled_in_order() {
    let handler = TestHandler::default();
    let seen = handler.seen.clone();
    let (_server, client) = pair(handler);
    for i in 0..20 {
        client.notify_raw("n", Some(json!({"i": i}))).unwrap();
    }
    tokio::time::timeout(LIMIT, async {
        while seen.lock().unwrap().len() < 20 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(*seen.lock().unwrap(), (0..20).collect::<Vec<_>>());
}

#[tokio::test]
async fn cancel_answers_minus_32800_once() {
    let (_server, mut t) = raw(TestHandler::default());
    t.send(json!({"jsonrpc": "2.0", "id": 7, "method": "slow"})).await.unwrap();
    t.send(json!({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 7}})).await.unwrap();
    let answer = recv(&mut t).await;
    assert_eq!(answer["id"], json!(7));
    assert_eq!(answer["error"]["code"], json!(-32800));
    // Cancelling a finished request produces nothing; the next answer is the echo.
    t.send(json!({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 7}})).await.unwrap();
    t.send(json!({"jsonrpc": "2.0", "id": 8, "method": "echo", "params": [1]})).await.unwrap();
    assert_eq!(recv(&mut t).await, json!({"jsonrpc": "2.0", "id": 8, "result": [1]}));
}

#[tokio::test]
async fn unknown_method_bad_params_and_panics_are_answered() {
    let (_server, mut t) = raw(TestHandler::default());
    t.send(json!({"jsonrpc": "2.0", "id": 1, "method": "nope"})).await.unwrap();
    assert_eq!(recv(&mut t).await["error"]["code"], json!(-32601));
    t.send(json!({"jsonrpc": "2.0", "id": 2, "method": "typed", "params": {"id": 5}})).await.unwrap();
    let bad = recv(&mut t).await;
    assert_eq!(bad["error"]["code"], json!(-32602));
    assert!(bad["error"]["message"].as_str().unwrap().contains("invalid type"), "{bad}");
    t.send(json!({"jsonrpc": "2.0", "id": 3, "method": "boom"})).await.unwrap();
    let boom = recv(&mut t).await;
    assert_eq!(boom["error"]["code"], json!(-32603));
    assert!(boom["error"]["message"].as_str().unwrap().contains("blew up"));
    // Still alive.
    t.send(json!({"jsonrpc": "2.0", "id": 4, "method": "echo", "params": {"a": 1}})).await.unwrap();
    assert_eq!(recv(&mut t).await["result"], json!({"a": 1}));
}

#[tokio::test]
async fn client_timeout_cancels_the_request() {
    let handler = TestHandler::default();
    let cancelled = handler.cancelled.clone();
    let (_server, client) = pair(handler);
    let err = client.request_raw("slow", None, Some(Duration::from_millis(100))).await.unwrap_err();
    assert!(matches!(err, CallError::Timeout { .. }), "{err:?}");
    tokio::time::timeout(LIMIT, async {
        while !cancelled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the server saw $/cancelRequest");
}

#[tokio::test]
async fn peer_loss_fails_every_pending_call() {
    let (a, b) = Transport::pair();
    let client = Connection::start_client(b, ConnectionOptions { request_timeout: None, ..opts() });
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.request_raw("x", None, None).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(a);
    for call in calls {
        let err = tokio::time::timeout(LIMIT, call).await.unwrap().unwrap().unwrap_err();
        assert!(matches!(err, CallError::Closed(_)), "{err:?}");
    }
    let later = client.request_raw("x", None, None).await.unwrap_err();
    assert!(matches!(later, CallError::Closed(_)));
    tokio::time::timeout(LIMIT, client.closed()).await.unwrap();
}

#[tokio::test]
async fn a_methods_function_runs_when_its_call_arrives_and_bad_params_never_reach_it() {
    // The harness relies on this to queue env calls in arrival order.
    let order = Arc::new(Mutex::new(Vec::new()));
    let seen = order.clone();
    let methods = Methods::<usize>::new().on::<EnvStep, _, _>(move |params, n| {
        seen.lock().unwrap().push((n, params.action));
        async move { Err::<StepResult, _>(RpcError::internal("not played")) }
    });
    let first = methods.call(EnvStep::NAME, Some(json!({"action": "a"})), 1);
    let second = methods.call(EnvStep::NAME, Some(json!({"action": "b"})), 2);
    assert_eq!(*order.lock().unwrap(), vec![(1, "a".to_string()), (2, "b".to_string())], "before any await");
    assert_eq!(second.await.unwrap_err().message, "not played");
    drop(first);
    let bad = methods.call(EnvStep::NAME, Some(json!({"act": 1})), 3).await.unwrap_err();
    assert_eq!(bad.code.code(), -32602, "{bad}");
    let unknown = methods.call("env/nope", None, 4).await.unwrap_err();
    assert_eq!(unknown.code.code(), -32601, "{unknown}");
    assert_eq!(order.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn typed_router_round_trip() {
    let router = Router::new().request::<EnvTasks, _, _>(|_params, _ctx| async {
        let task = TaskInfo { id: "t".into(), description: None, splits: vec![] };
        Ok(TasksResult { tasks: vec![task] })
    });
    let (a, b) = Transport::pair();
    let _server = Connection::start(a, router, opts());
    let client = Connection::start_client(b, opts());
    let tasks = client.request::<EnvTasks>(Default::default()).await.unwrap();
    assert_eq!(tasks.tasks[0].id, "t");
    let err = client.request_raw("env/reset", None, None).await.unwrap_err();
    assert!(matches!(err, CallError::Rpc(e) if e.code.code() == -32601));
}

/// Writes `frame(0)`, `frame(1)`, ... until a write stays blocked for 300 ms (or 100,000 were
/// taken in); returns how many were written whole.
async fn flood(peer: &mut (impl tokio::io::AsyncWrite + Unpin), frame: impl Fn(usize) -> Vec<u8>) -> usize {
    let mut written = 0;
    for i in 0..100_000 {
        match tokio::time::timeout(Duration::from_millis(300), peer.write_all(&frame(i))).await {
            Ok(Ok(())) => written += 1,
            _ => break,
        }
    }
    written
}

#[tokio::test]
async fn a_peer_that_never_reads_answers_is_no_longer_read() {
    // The peer writes requests as fast as it can and reads nothing back. Without backpressure
    // every request is read and its answer queued in memory; with it, reading stops once the
    // answers pile up, so the peer's own writes block.
    let (server_side, client_side) = tokio::io::duplex(16 * 1024);
    let (sr, sw) = tokio::io::split(server_side);
    let _server = Connection::start(Transport::new(sr, sw), TestHandler::default(), opts());
    let (mut peer_read, mut peer_write) = tokio::io::split(client_side);
    use tokio::io::AsyncReadExt;
    let frame = |i: usize| {
        stepwire_sdk::framing::frame_bytes(
            json!({"jsonrpc": "2.0", "id": i, "method": "echo", "params": [i]}).to_string().as_bytes(),
        )
    };
    let written = flood(&mut peer_write, frame).await;
    assert!(written < 5_000, "{written} requests were taken in without their answers being read");
    // Nothing is lost: once the peer reads, every request it wrote is answered.
    let mut answered = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut text = String::new();
    while answered.len() < written {
        let n = tokio::time::timeout(LIMIT, peer_read.read(&mut buf)).await.expect("answers flow").unwrap();
        text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        while let Some(start) = text.find("\r\n\r\n") {
            let len: usize = text[..start].trim_start_matches("Content-Length: ").parse().unwrap();
            if text.len() < start + 4 + len {
                break;
            }
            let body: Value = serde_json::from_str(&text[start + 4..start + 4 + len]).unwrap();
            answered.push(body["id"].as_u64().unwrap());
            text.drain(..start + 4 + len);
        }
    }
    answered.sort_unstable();
    answered.dedup();
    assert_eq!(answered.len(), written);
}

#[tokio::test]
async fn a_peer_that_floods_notifications_is_no_longer_read_until_they_run() {
    // The notification handler is held: without a bounded queue every notification the peer
    // writes is read and queued in memory; with it, reading stops and the peer's writes block.
    let handler = TestHandler::default();
    let (gate, seen) = (handler.gate.clone(), handler.seen.clone());
    let (server_side, client_side) = tokio::io::duplex(16 * 1024);
    let (sr, sw) = tokio::io::split(server_side);
    let _server = Connection::start(Transport::new(sr, sw), handler, opts());
    let (_peer_read, mut peer_write) = tokio::io::split(client_side);
    let frame = |i: usize| {
        stepwire_sdk::framing::frame_bytes(
            json!({"jsonrpc": "2.0", "method": "held", "params": {"i": i}}).to_string().as_bytes(),
        )
    };
    let written = flood(&mut peer_write, frame).await;
    assert!(written < 5_000, "{written} notifications were taken in while none could run");
    // Nothing is lost: once the handler runs again, every notification written runs, in order.
    gate.add_permits(1);
    tokio::time::timeout(LIMIT, async {
        while seen.lock().unwrap().len() < written {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("every queued notification runs");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, (0..written as i64).collect::<Vec<_>>());
}

/// A bridge-side peer: strict, as `BridgeClient` makes it.
fn strict_client() -> (Connection, tokio::io::DuplexStream) {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (r, w) = tokio::io::split(ours);
    let conn = Connection::start_client(Transport::new(r, w), ConnectionOptions { strict: true, ..opts() });
    (conn, theirs)
}

#[tokio::test]
async fn a_strict_peer_that_breaks_the_protocol_is_dropped_at_once() {
    for (what, bytes) in [
        ("not JSON", stepwire_sdk::framing::frame_bytes(b"hello")),
        ("an answer to nothing", stepwire_sdk::framing::frame_bytes(br#"{"jsonrpc":"2.0","id":999,"result":1}"#)),
        ("a 100 MB frame", b"Content-Length: 104857600\r\n\r\n".to_vec()),
        ("a broken header", b"Content-Lenght: 3\r\n\r\n{}\n".to_vec()),
    ] {
        let (conn, mut theirs) = strict_client();
        let call = {
            let conn = conn.clone();
            tokio::spawn(async move { conn.request_raw("env/tasks", None, Some(Duration::from_secs(60))).await })
        };
        theirs.write_all(&bytes).await.unwrap();
        let started = std::time::Instant::now();
        let err = tokio::time::timeout(LIMIT, call).await.expect("failed at once, not after the timeout").unwrap();
        match err {
            Err(CallError::Closed(reason)) => assert!(reason.contains("broke the protocol"), "{what}: {reason}"),
            other => panic!("{what}: expected the connection closed, got {other:?}"),
        }
        assert!(started.elapsed() < LIMIT);
    }
}

#[tokio::test]
async fn a_late_answer_to_a_timed_out_call_is_not_a_protocol_break() {
    let (conn, theirs) = strict_client();
    let (r, w) = tokio::io::split(theirs);
    let mut peer = Transport::new(r, w);
    let late = conn.request_raw("env/tasks", None, Some(Duration::from_millis(100))).await;
    assert!(matches!(late, Err(CallError::Timeout { .. })), "{late:?}");
    let asked = recv(&mut peer).await;
    peer.send(json!({"jsonrpc": "2.0", "id": asked["id"], "result": "late"})).await.unwrap();
    let call = {
        let conn = conn.clone();
        tokio::spawn(async move { conn.request_raw("env/tasks", None, None).await })
    };
    loop {
        let msg = recv(&mut peer).await;
        if msg["method"] == "env/tasks" {
            peer.send(json!({"jsonrpc": "2.0", "id": msg["id"], "result": "on time"})).await.unwrap();
            break;
        }
    }
    assert_eq!(call.await.unwrap().unwrap(), json!("on time"));
}
