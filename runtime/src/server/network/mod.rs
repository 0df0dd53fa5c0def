//! The network listener: WebSocket and HTTP/1.1 on one port.
//!
//! A WebSocket is a session like stdio: the SDK's JSON-RPC peer behind the lifecycle layer
//! ([`websocket`]). An HTTP POST is one stateless call ([`http`]). Every request passes the
//! [`guard`] (token, `Host`, `Origin`) before anything else, and every resource a client can hold
//! is bounded: connections, requests in flight per connection, message size, time to send
//! headers, time idle.

mod guard;
mod http;
mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming as Body;
use hyper::header::{HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use guard::Guard;

use super::service::AgentService;

/// Settings of the network listener.
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    pub listen: SocketAddr,
    /// When set, every HTTP request and WebSocket upgrade must carry `Authorization: Bearer <token>`.
    /// Required beyond loopback.
    pub bearer_token: Option<String>,
    /// Host names accepted in `Host` besides IP literals and `localhost` (`*`: any).
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted in `Origin` (`*`: any); requests without `Origin` pass.
    pub allowed_origins: Vec<String>,
    pub max_connections: usize,
    pub connection: ConnectionLimits,
    /// Time a client has to send a request's headers.
    pub header_timeout: Duration,
}

/// What one connection may hold.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_message_bytes: usize,
    /// Requests running at once on one WebSocket; more get -31012.
    pub max_in_flight: usize,
    /// A connection with no message and no request running for this long is closed.
    pub idle_timeout: Duration,
}

/// A running listener.
#[derive(Clone)]
pub struct ServerHandle {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl ServerHandle {
    /// Stops accepting and closes every connection (calls in flight are cancelled).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Waits until the listener and its connections are gone.
    pub async fn stopped(&self) {
        self.stop.cancelled().await;
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// Binds and starts the listener; returns the bound address (useful with port 0) and a handle.
pub async fn start(service: AgentService, options: NetworkOptions) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    if !options.listen.ip().is_loopback() && options.bearer_token.is_none() {
        anyhow::bail!(
            "refusing to listen on {} without a token: anyone who can reach it could use the agent. \
             Set STEPWIRE_TOKEN or --token-file, or listen on 127.0.0.1",
            options.listen
        );
    }
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", options.listen))?;
    let addr = listener.local_addr()?;
    let guard =
        Guard::new(options.bearer_token.as_deref(), options.allowed_hosts.clone(), options.allowed_origins.clone());
    let shared = Arc::new(Shared { service, guard, options, slots: Arc::new(Semaphore::new(0)) });
    shared.slots.add_permits(shared.options.max_connections.max(1));
    let handle = ServerHandle { stop: CancellationToken::new(), tasks: TaskTracker::new() };
    handle.tasks.spawn(accept_loop(listener, shared, handle.clone()));
    Ok((addr, handle))
}

struct Shared {
    service: AgentService,
    guard: Guard,
    options: NetworkOptions,
    /// One permit per open connection (a WebSocket keeps its own after the upgrade).
    slots: Arc<Semaphore>,
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, handle: ServerHandle) {
    loop {
        let (tcp, peer) = tokio::select! {
            _ = handle.stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, for instance: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let slot = shared.slots.clone().try_acquire_owned().ok();
        handle.tasks.spawn(serve_tcp(tcp, peer, slot, shared.clone(), handle.clone()));
    }
}

/// Serves one TCP connection: HTTP/1.1 requests, or one upgrade to WebSocket.
async fn serve_tcp(
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Option<OwnedSemaphorePermit>,
    shared: Arc<Shared>,
    handle: ServerHandle,
) {
    let slot = slot.map(Arc::new);
    let activity = Arc::new(tokio::sync::Notify::new());
    let service = {
        let (shared, handle, activity) = (shared.clone(), handle.clone(), activity.clone());
        hyper::service::service_fn(move |req| {
            activity.notify_one();
            let (shared, handle, slot) = (shared.clone(), handle.clone(), slot.clone());
            async move { Ok::<_, std::convert::Infallible>(route(req, peer, slot, shared, handle).await) }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.options.header_timeout)
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(conn);
    let idle = shared.options.connection.idle_timeout;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, "HTTP connection ended: {e}");
                }
                return;
            }
            _ = activity.notified() => continue,
            // A keep-alive connection that sends nothing gives its slot back.
            _ = tokio::time::sleep(idle) => conn.as_mut().graceful_shutdown(),
            _ = handle.stop.cancelled() => conn.as_mut().graceful_shutdown(),
        }
    }
}

async fn route(
    req: Request<Body>,
    peer: SocketAddr,
    slot: Option<Arc<OwnedSemaphorePermit>>,
    shared: Arc<Shared>,
    handle: ServerHandle,
) -> Response<Full<Bytes>> {
    let Some(slot) = slot else {
        let message =
            format!("too many connections (--max-connections {}): retry later", shared.options.max_connections);
        return with_close(http::plain(StatusCode::SERVICE_UNAVAILABLE, message));
    };
    if let Err(refusal) = shared.guard.check(req.headers()) {
        tracing::info!(%peer, status = %refusal.status, "refused: {}", refusal.message);
        let mut response = http::plain(refusal.status, refusal.message);
        if refusal.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        return response;
    }
    let limits = shared.options.connection;
    if is_websocket_upgrade(&req) {
        return upgrade(req, peer, slot, shared.service.clone(), limits, handle);
    }
    if req.method() != Method::POST {
        return http::plain(StatusCode::METHOD_NOT_ALLOWED, "POST one JSON-RPC message, or open a WebSocket".into());
    }
    http::answer(req, shared.service.clone(), limits.max_message_bytes).await
}

fn is_websocket_upgrade(req: &Request<Body>) -> bool {
    let has = |name, token: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    has(UPGRADE, "websocket") && has(CONNECTION, "upgrade")
}

/// Answers the handshake (`101 Switching Protocols`) and serves the WebSocket once upgraded.
fn upgrade(
    mut req: Request<Body>,
    peer: SocketAddr,
    slot: Arc<OwnedSemaphorePermit>,
    service: AgentService,
    limits: ConnectionLimits,
    handle: ServerHandle,
) -> Response<Full<Bytes>> {
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY).cloned() else {
        return http::plain(StatusCode::BAD_REQUEST, "WebSocket upgrade without Sec-WebSocket-Key".into());
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    handle.tasks.spawn(async move {
        let upgraded = tokio::select! {
            _ = handle.stop.cancelled() => return,
            upgraded = on_upgrade => upgraded,
        };
        match upgraded {
            Ok(upgraded) => {
                tokio::select! {
                    _ = websocket::serve(upgraded, service, limits, format!("ws:{peer}")) => {}
                    _ = handle.stop.cancelled() => tracing::debug!(%peer, "WebSocket closed: server stopping"),
                }
            }
            Err(e) => tracing::debug!(%peer, "WebSocket upgrade failed: {e}"),
        }
        drop(slot);
    });
    let mut response = http::empty(StatusCode::SWITCHING_PROTOCOLS);
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&accept).expect("base64 is a valid header"));
    response
}

fn with_close(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::server::test_agent::HeldAgent;

    #[tokio::test]
    async fn an_http_client_that_goes_away_cancels_its_call() {
        let agent = Arc::new(HeldAgent::default());
        let service = AgentService::new(agent.clone(), stepwire_sdk::protocol::AgentCapabilities::default());
        let options = NetworkOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            bearer_token: None,
            allowed_hosts: vec![],
            allowed_origins: vec![],
            max_connections: 4,
            connection: ConnectionLimits {
                max_message_bytes: 1 << 20,
                max_in_flight: 4,
                idle_timeout: Duration::from_secs(60),
            },
            header_timeout: Duration::from_secs(10),
        };
        let (addr, handle) = start(service, options).await.unwrap();
        let body =
            r#"{"jsonrpc":"2.0","id":1,"method":"agent/act","params":{"subtask":"s","observation":{"text":"t"}}}"#;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!("POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        tcp.write_all(request.as_bytes()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), agent.started_signal.notified()).await.expect("the call started");
        drop(tcp);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !agent.cancelled.load(Ordering::SeqCst) {
            assert!(tokio::time::Instant::now() < deadline, "the call ran on after its client went away");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        handle.stop();
    }
}
