//! A JSON-RPC 2.0 peer over a [`Transport`]: it sends requests and awaits their answers, and
//! serves incoming messages with a [`Handler`].
//!
//! Three tasks per connection: a reader (classifies and dispatches), a writer (the only one
//! touching the output), and a notification task (runs notifications one at a time, in order).
//! Requests each get their own task.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::handler::{Handler, NoHandler, NotificationContext, RequestContext};
use super::message::{classify, Incoming};
use crate::protocol::methods::{CancelRequest, NotificationMethod, RequestMethod};
use crate::protocol::{CancelParams, Notification, Request, RequestId, Response, ResponseError, RpcError};
use crate::transport::{Transport, TransportReader, TransportWriter};

/// Why an outgoing call produced no result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The peer answered with an error.
    #[error("{0}")]
    Rpc(RpcError),
    /// No answer in time; the request was cancelled with `$/cancelRequest`.
    #[error("no answer to `{method}` within {after:?}")]
    Timeout { method: String, after: Duration },
    /// The connection is closed; no answer will come.
    #[error("connection closed: {0}")]
    Closed(String),
    /// The params could not be serialised or the result did not match the method's type.
    #[error("`{method}`: {detail}")]
    BadMessage { method: String, detail: String },
}

/// Settings of a connection.
#[derive(Debug, Clone)]
pub struct ConnectionOptions {
    /// A name for logs (the bridge's name, `agent`, ...).
    pub name: String,
    /// Default time to wait for each outgoing request's answer; `None` waits forever.
    pub request_timeout: Option<Duration>,
    /// The peer is a program of ours that must speak the protocol (a bridge): the first message
    /// that breaks it (bad JSON, an oversized frame, an answer to nothing) ends the connection at
    /// once, with the fault as the reason, instead of being answered and skipped.
    pub strict: bool,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions { name: "peer".into(), request_timeout: Some(Duration::from_secs(60)), strict: false }
    }
}

/// Answers to the peer waiting to be written. When they pile up (the peer sends but does not
/// read), the connection stops reading the peer until it catches up: memory stays bounded and
/// the peer's own writes block.
const REPLY_QUEUE: usize = 64;

/// Incoming notifications waiting for the notification task. When they pile up (a peer floods
/// notifications whose handler is slow), the connection stops reading the peer until they run.
const NOTIFICATION_QUEUE: usize = 64;

type Reply = oneshot::Sender<Result<Value, RpcError>>;

#[derive(Default)]
struct Shared {
    pending: HashMap<RequestId, Reply>,
    inflight: HashMap<RequestId, CancellationToken>,
    /// Our requests given up on (timed out, caller gone): a late answer to one is expected.
    abandoned: std::collections::HashSet<RequestId>,
    closed: Option<String>,
}

struct Inner {
    /// What this side originates (requests, notifications): bounded by its own callers.
    out: mpsc::UnboundedSender<Value>,
    /// Answers to the peer's messages: bounded (see [`REPLY_QUEUE`]).
    replies: mpsc::Sender<Value>,
    shared: Mutex<Shared>,
    next_id: AtomicI64,
    stop: CancellationToken,
    finished: CancellationToken,
    /// Incoming requests and the notification task: waited for at end of input.
    tasks: TaskTracker,
    opts: ConnectionOptions,
}

/// A handle on a running connection; cheap to clone.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("name", &self.inner.opts.name).finish()
    }
}

impl Connection {
    /// Starts serving `transport` with `handler`. Must be called inside a tokio runtime.
    pub fn start(transport: Transport, handler: impl Handler, opts: ConnectionOptions) -> Self {
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (replies_tx, replies_rx) = mpsc::channel(REPLY_QUEUE);
        let (notif_tx, notif_rx) = mpsc::channel(NOTIFICATION_QUEUE);
        let conn = Connection {
            inner: Arc::new(Inner {
                out: out_tx,
                replies: replies_tx,
                shared: Mutex::new(Shared::default()),
                next_id: AtomicI64::new(1),
                stop: CancellationToken::new(),
                finished: CancellationToken::new(),
                tasks: TaskTracker::new(),
                opts,
            }),
        };
        let handler: Arc<dyn Handler> = Arc::new(handler);
        let (reader, writer) = transport.split();
        tokio::spawn(write_loop(conn.clone(), writer, out_rx, replies_rx));
        conn.inner.tasks.spawn(notification_loop(conn.clone(), handler.clone(), notif_rx));
        tokio::spawn(read_loop(conn.clone(), reader, handler, notif_tx));
        conn
    }

    /// A connection that only makes calls: incoming requests get -32601.
    pub fn start_client(transport: Transport, opts: ConnectionOptions) -> Self {
        Self::start(transport, NoHandler, opts)
    }

    pub fn name(&self) -> &str {
        &self.inner.opts.name
    }

    /// Calls `M` with the default timeout.
    pub async fn request<M: RequestMethod>(&self, params: M::Params) -> Result<M::Result, CallError> {
        self.request_with_timeout::<M>(params, self.inner.opts.request_timeout).await
    }

    /// Calls `M`, waiting at most `timeout` (`None`: forever).
    pub async fn request_with_timeout<M: RequestMethod>(
        &self,
        params: M::Params,
        timeout: Option<Duration>,
    ) -> Result<M::Result, CallError> {
        let bad = |detail: String| CallError::BadMessage { method: M::NAME.into(), detail };
        let params = serde_json::to_value(params).map_err(|e| bad(e.to_string()))?;
        let params = (!params.is_null()).then_some(params);
        let value = self.request_raw(M::NAME, params, timeout).await?;
        serde_json::from_value(value).map_err(|e| bad(format!("unexpected result: {e}")))
    }

    /// Calls any method with JSON params.
    pub async fn request_raw(
        &self,
        method: &str,
        params: Option<Value>,
        timeout: Option<Duration>,
    ) -> Result<Value, CallError> {
        let id = RequestId::Number(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        {
            let mut shared = self.lock();
            if let Some(reason) = &shared.closed {
                return Err(CallError::Closed(reason.clone()));
            }
            shared.pending.insert(id.clone(), tx);
        }
        // Removes the pending entry however this call ends (answer, timeout, caller dropped).
        let _guard = PendingGuard { conn: self, id: id.clone() };
        self.send(Request::new(id.clone(), method, params))?;
        let answer = match timeout {
            None => rx.await,
            Some(after) => match tokio::time::timeout(after, rx).await {
                Ok(answer) => answer,
                Err(_) => {
                    let _ = self.notify::<CancelRequest>(CancelParams { id });
                    return Err(CallError::Timeout { method: method.into(), after });
                }
            },
        };
        match answer {
            Ok(result) => result.map_err(CallError::Rpc),
            Err(_) => Err(CallError::Closed(self.close_reason())),
        }
    }

    /// Sends notification `N`.
    pub fn notify<N: NotificationMethod>(&self, params: N::Params) -> Result<(), CallError> {
        let params = serde_json::to_value(params)
            .map_err(|e| CallError::BadMessage { method: N::NAME.into(), detail: e.to_string() })?;
        self.notify_raw(N::NAME, (!params.is_null()).then_some(params))
    }

    /// Sends any notification with JSON params.
    pub fn notify_raw(&self, method: &str, params: Option<Value>) -> Result<(), CallError> {
        self.send(Notification::new(method, params))
    }

    /// Stops reading, sends what is queued, then closes the output. Pending calls fail;
    /// incoming requests still running are not answered.
    pub fn close(&self) {
        self.close_with_reason("connection closed locally");
    }

    /// [`Connection::close`], with the reason pending and later calls report.
    pub fn close_with_reason(&self, reason: &str) {
        self.fail_pending(reason);
        self.inner.stop.cancel();
    }

    /// Waits until the connection has ended (both directions) and says why.
    pub async fn closed(&self) -> String {
        self.inner.finished.cancelled().await;
        self.close_reason()
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }

    fn close_reason(&self) -> String {
        self.lock().closed.clone().unwrap_or_else(|| "connection closed".into())
    }

    fn send(&self, msg: impl serde::Serialize) -> Result<(), CallError> {
        let value = serde_json::to_value(msg)
            .map_err(|e| CallError::BadMessage { method: String::new(), detail: e.to_string() })?;
        self.inner.out.send(value).map_err(|_| CallError::Closed(self.close_reason()))
    }

    /// Room for one notification in the notification task's queue; waits while it is full (so
    /// the peer is not read until notifications run); `None` once the connection is stopping.
    async fn notification_slot(&self, queue: &NotifQueue) -> Option<NotifSlot> {
        tokio::select! {
            biased;
            _ = self.inner.stop.cancelled() => None,
            slot = queue.clone().reserve_owned() => slot.ok(),
        }
    }

    /// Waits for room in the reply queue; `None` once the connection is stopping.
    async fn reply_slot(&self) -> Option<ReplySlot> {
        tokio::select! {
            biased;
            _ = self.inner.stop.cancelled() => None,
            slot = self.inner.replies.clone().reserve_owned() => slot.ok(),
        }
    }

    fn respond(slot: ReplySlot, id: Option<RequestId>, result: Result<Value, RpcError>) {
        let response = match (id, result) {
            (Some(id), Ok(v)) => Response::ok(id, v),
            (id, Err(e)) => Response::err(id, ResponseError::from(e)),
            (None, Ok(_)) => return,
        };
        if let Ok(value) = serde_json::to_value(response) {
            slot.send(value);
        }
    }

    /// In strict mode, ends the connection for a message that breaks the protocol; says whether it did.
    fn broke_protocol(&self, what: &str) -> bool {
        if !self.inner.opts.strict {
            return false;
        }
        tracing::warn!(peer = self.name(), "the peer broke the protocol: {what}");
        self.close_with_reason(&format!("the peer broke the protocol: {what}"));
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        // A poisoned lock only means a panic elsewhere; the maps are still usable.
        self.inner.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the connection closed: pending outgoing calls fail (no answer can come).
    fn fail_pending(&self, reason: &str) {
        let pending = {
            let mut shared = self.lock();
            shared.closed.get_or_insert_with(|| reason.to_string());
            std::mem::take(&mut shared.pending)
        };
        drop(pending); // dropping the senders wakes every waiter with "closed"
    }

    /// Cancels every incoming request still running.
    fn cancel_inflight(&self) {
        let inflight = std::mem::take(&mut self.lock().inflight);
        inflight.values().for_each(CancellationToken::cancel);
    }

    /// Handles one classified message; `slot` is its reply's room when it needs one, `queued`
    /// its room in the notification queue when it is a notification to run.
    fn dispatch(
        &self,
        handler: &Arc<dyn Handler>,
        incoming: Incoming,
        slot: Option<ReplySlot>,
        queued: Option<NotifSlot>,
    ) {
        match incoming {
            Incoming::Request { id, method, params } => match slot {
                Some(slot) => self.dispatch_request(handler, slot, id, method, params),
                None => tracing::debug!(peer = self.name(), "request dropped: the connection is stopping"),
            },
            Incoming::Notification { method, params } if method == CancelRequest::NAME => {
                match serde_json::from_value::<CancelParams>(params.unwrap_or(Value::Null)) {
                    Ok(CancelParams { id }) => {
                        if let Some(token) = self.lock().inflight.get(&id) {
                            token.cancel();
                        }
                    }
                    Err(e) => tracing::warn!(peer = self.name(), "bad $/cancelRequest: {e}"),
                }
            }
            Incoming::Notification { method, params } => match queued {
                Some(queued) => {
                    queued.send((method, params));
                }
                None => tracing::debug!(peer = self.name(), method, "notification dropped: the connection is stopping"),
            },
            Incoming::Response { id, result } => {
                let (reply, late) = {
                    let mut shared = self.lock();
                    let reply = shared.pending.remove(&id);
                    let late = reply.is_none() && shared.abandoned.remove(&id);
                    (reply, late)
                };
                match reply {
                    Some(reply) => {
                        let _ = reply.send(result);
                    }
                    None if late => tracing::debug!(peer = self.name(), %id, "late answer to a request given up on"),
                    None if self.broke_protocol(&format!("an answer to id {id}, which was never asked")) => {}
                    None => tracing::warn!(peer = self.name(), %id, "answer to no pending request"),
                }
            }
            Incoming::Invalid { id, error } => {
                if self.broke_protocol(&error.message) {
                    return;
                }
                tracing::warn!(peer = self.name(), "invalid message: {}", error.message);
                if let Some(slot) = slot {
                    Self::respond(slot, id, Err(error));
                }
            }
            Incoming::Ignore(why) => {
                if !self.broke_protocol(&why) {
                    tracing::warn!(peer = self.name(), "ignored message: {why}");
                }
            }
        }
    }

    fn dispatch_request(
        &self,
        handler: &Arc<dyn Handler>,
        slot: ReplySlot,
        id: RequestId,
        method: String,
        params: Option<Value>,
    ) {
        let cancel = CancellationToken::new();
        {
            let mut shared = self.lock();
            if shared.inflight.contains_key(&id) {
                drop(shared);
                let msg = format!("request id {id} is already in flight");
                return Self::respond(slot, Some(id), Err(RpcError::invalid_request(msg)));
            }
            shared.inflight.insert(id.clone(), cancel.clone());
        }
        let ctx =
            RequestContext { id: id.clone(), method: method.clone(), cancel: cancel.clone(), connection: self.clone() };
        // The synchronous part runs here, in arrival order; its panic is caught too.
        let fut = std::panic::catch_unwind(AssertUnwindSafe(|| handler.request(ctx, params)));
        let conn = self.clone();
        self.inner.tasks.spawn(async move {
            let result = match fut {
                Err(panic) => Err(panic_error(&method, panic)),
                // Cancel first: a handler that stops because of the token still gets -32800.
                Ok(fut) => tokio::select! {
                    biased;
                    _ = cancel.cancelled() => Err(RpcError::cancelled()),
                    r = AssertUnwindSafe(fut).catch_unwind() => r.unwrap_or_else(|p| Err(panic_error(&method, p))),
                },
            };
            conn.lock().inflight.remove(&id);
            Self::respond(slot, Some(id), result);
        });
    }
}

fn panic_error(method: &str, panic: Box<dyn std::any::Any + Send>) -> RpcError {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!(method, "handler panicked: {what}");
    RpcError::internal(format!("handler for `{method}` panicked: {what}"))
}

struct PendingGuard<'a> {
    conn: &'a Connection,
    id: RequestId,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let mut shared = self.conn.lock();
        if shared.pending.remove(&self.id).is_some() {
            shared.abandoned.insert(self.id.clone());
        }
    }
}

type NotifQueue = mpsc::Sender<(String, Option<Value>)>;
type NotifSlot = mpsc::OwnedPermit<(String, Option<Value>)>;
type ReplySlot = mpsc::OwnedPermit<Value>;

/// Whether answering `incoming` takes a place in the reply queue.
fn needs_reply(incoming: &Incoming) -> bool {
    matches!(incoming, Incoming::Request { .. } | Incoming::Invalid { .. })
}

/// Whether `incoming` takes a place in the notification queue (`$/cancelRequest` acts at once).
fn runs_as_notification(incoming: &Incoming) -> bool {
    matches!(incoming, Incoming::Notification { method, .. } if method != CancelRequest::NAME)
}

async fn read_loop(conn: Connection, mut reader: TransportReader, handler: Arc<dyn Handler>, notif_tx: NotifQueue) {
    let reason = loop {
        let item = tokio::select! {
            _ = conn.inner.stop.cancelled() => break "connection closed locally".to_string(),
            item = reader.recv() => item,
        };
        match item {
            None => break "peer closed the stream".to_string(),
            Some(Err(fatal)) => {
                if conn.broke_protocol(&fatal.to_string()) {
                    break format!("the peer broke the protocol: {fatal}");
                }
                tracing::warn!(peer = conn.name(), "unrecoverable frame error: {fatal}");
                if let Some(error) = fatal.rpc_error() {
                    if let Some(slot) = conn.reply_slot().await {
                        Connection::respond(slot, None, Err(error));
                    }
                }
                break format!("unrecoverable frame error: {fatal}");
            }
            Some(Ok(Err(fault))) => {
                if conn.broke_protocol(&fault.to_string()) {
                    break format!("the peer broke the protocol: {fault}");
                }
                tracing::warn!(peer = conn.name(), "bad frame: {fault}");
                if let Some(error) = fault.rpc_error() {
                    if let Some(slot) = conn.reply_slot().await {
                        Connection::respond(slot, None, Err(error));
                    }
                }
            }
            Some(Ok(Ok(value))) => {
                let incoming = classify(value);
                let slot = if needs_reply(&incoming) { conn.reply_slot().await } else { None };
                let queued =
                    if runs_as_notification(&incoming) { conn.notification_slot(&notif_tx).await } else { None };
                conn.dispatch(&handler, incoming, slot, queued);
            }
        }
    };
    tracing::debug!(peer = conn.name(), "reader done: {reason}");
    conn.fail_pending(&reason);
    // Input is over, but what already arrived is still served: queued notifications run and
    // running requests are answered (a peer may half-close after its last request).
    drop(notif_tx);
    conn.inner.tasks.close();
    tokio::select! {
        _ = conn.inner.tasks.wait() => {}
        _ = conn.inner.stop.cancelled() => {}
    }
    conn.cancel_inflight();
    conn.inner.stop.cancel();
}

async fn write_loop(
    conn: Connection,
    mut writer: TransportWriter,
    mut rx: mpsc::UnboundedReceiver<Value>,
    mut replies: mpsc::Receiver<Value>,
) {
    loop {
        let msg = tokio::select! {
            biased;
            msg = rx.recv() => msg,
            Some(msg) = replies.recv() => Some(msg),
            _ = conn.inner.stop.cancelled() => None,
        };
        let Some(msg) = msg else { break };
        if let Err(e) = writer.send(msg).await {
            tracing::debug!(peer = conn.name(), "write failed: {e}");
            conn.fail_pending(&format!("cannot write to peer: {e}"));
            conn.cancel_inflight();
            conn.inner.stop.cancel();
            break;
        }
    }
    // Whatever was queued before the stop still goes out (an error answer, a last response).
    replies.close();
    while let Some(msg) = rx.try_recv().ok().or_else(|| replies.try_recv().ok()) {
        if writer.send(msg).await.is_err() {
            break;
        }
    }
    let _ = writer.close().await;
    conn.inner.finished.cancel();
}

async fn notification_loop(
    conn: Connection,
    handler: Arc<dyn Handler>,
    mut rx: mpsc::Receiver<(String, Option<Value>)>,
) {
    // Ends when the reader drops the queue, after running what is queued.
    while let Some((method, params)) = rx.recv().await {
        let ctx = NotificationContext { connection: conn.clone() };
        let fut = std::panic::catch_unwind(AssertUnwindSafe(|| handler.notification(ctx, &method, params)));
        let outcome = match fut {
            Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
            Err(p) => Err(p),
        };
        if let Err(p) = outcome {
            let _ = panic_error(&method, p);
        }
    }
}
