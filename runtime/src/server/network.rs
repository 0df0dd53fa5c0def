//! The network listener: WebSocket and HTTP on one port, served by jsonrpsee.
//!
//! Over WebSocket a host may cancel a request with `$/cancelRequest` (the request is still
//! answered, -32800). Plain HTTP POSTs stand alone: `initialize` is answered but not required,
//! since nothing ties one POST to the next.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use jsonrpsee::core::middleware::{Batch, Notification};
use jsonrpsee::server::middleware::rpc::{RpcServiceBuilder, RpcServiceT};
use jsonrpsee::server::{Server, ServerConfig, ServerHandle};
use jsonrpsee::types::{ErrorObjectOwned, Request};
use jsonrpsee::{ConnectionId, Extensions, MethodResponse, RpcModule};
use serde_json::Value;
use stepwire_sdk::protocol::{methods::*, RpcError};
use tokio_util::sync::CancellationToken;

use super::auth::BearerAuthLayer;
use super::service::AgentService;

/// Settings of the network listener.
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    pub listen: SocketAddr,
    /// When set, every HTTP request and WebSocket upgrade must carry `Authorization: Bearer <token>`.
    pub bearer_token: Option<String>,
    pub max_message_bytes: u32,
    pub max_connections: u32,
}

fn to_error_object(e: RpcError) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(e.code.code() as i32, e.message, e.data)
}

/// A request as the cancel registry knows it: its connection and its id, as JSON text.
type RequestKey = (Option<ConnectionId>, String);

/// In-flight requests by connection and id, so `$/cancelRequest` can find them.
#[derive(Clone, Default)]
struct InFlight(Arc<Mutex<HashMap<RequestKey, CancellationToken>>>);

impl InFlight {
    fn key(conn: Option<ConnectionId>, id: &impl serde::Serialize) -> RequestKey {
        (conn, serde_json::to_string(id).unwrap_or_default())
    }

    fn insert(&self, key: RequestKey, token: CancellationToken) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(key, token);
    }

    fn remove(&self, key: &RequestKey) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    fn cancel(&self, key: &RequestKey) -> bool {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).map(|t| t.cancel()).is_some()
    }
}

/// RPC middleware: gives each call a cancellation token and honours `$/cancelRequest`.
#[derive(Clone)]
struct Cancellable<S> {
    inner: S,
    in_flight: InFlight,
}

impl<S> RpcServiceT for Cancellable<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            NotificationResponse = MethodResponse,
            BatchResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, mut req: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let conn = req.extensions().get::<ConnectionId>().copied();
        let id = req.id().into_owned();
        let key = InFlight::key(conn, &id);
        let token = CancellationToken::new();
        req.extensions_mut().insert(token.clone());
        self.in_flight.insert(key.clone(), token.clone());
        let inner = self.inner.clone();
        let in_flight = self.in_flight.clone();
        async move {
            let response = tokio::select! {
                r = inner.call(req) => r,
                _ = token.cancelled() => MethodResponse::error(id, to_error_object(RpcError::cancelled())),
            };
            in_flight.remove(&key);
            response
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.inner.batch(batch)
    }

    fn notification<'a>(&self, n: Notification<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        if n.method_name() == CancelRequest::NAME {
            let conn = n.extensions().get::<ConnectionId>().copied();
            let id = n
                .params()
                .as_ref()
                .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
                .and_then(|v| v.get("id").cloned());
            match id {
                Some(id) if self.in_flight.cancel(&InFlight::key(conn, &id)) => {
                    tracing::debug!(%id, "cancelled by the host");
                }
                Some(id) => tracing::debug!(%id, "cancel for a request not in flight"),
                None => tracing::warn!("$/cancelRequest without an id"),
            }
        }
        self.inner.notification(n)
    }
}

fn token_of(ext: &Extensions) -> CancellationToken {
    ext.get::<CancellationToken>().cloned().unwrap_or_default()
}

fn register_agent_method(module: &mut RpcModule<AgentService>, name: &'static str) {
    module
        .register_async_method(name, move |params, service, ext| async move {
            let params: Option<Value> = params
                .parse::<Option<Value>>()
                .map_err(|e| to_error_object(RpcError::invalid_params(format!("{name}: {}", e.message()))))?;
            service.handle(name, params, &token_of(&ext)).await.map_err(to_error_object)
        })
        .expect("method names are unique");
}

fn module(service: AgentService) -> RpcModule<AgentService> {
    let mut module = RpcModule::new(service);
    module
        .register_method(Initialize::NAME, |params, service, _| {
            let params: Option<Value> = params
                .parse()
                .map_err(|e: ErrorObjectOwned| to_error_object(RpcError::invalid_params(e.message().to_string())))?;
            service.initialize(params).map_err(to_error_object)
        })
        .expect("unique");
    module.register_method(Shutdown::NAME, |_, _, _| Ok::<Value, ErrorObjectOwned>(Value::Null)).expect("unique");
    for name in [AgentPlan::NAME, AgentAct::NAME, AgentProgress::NAME, AgentStep::NAME] {
        register_agent_method(&mut module, name);
    }
    module
}

/// Starts the listener; returns the bound address (useful with port 0) and a handle to stop it.
pub async fn start(service: AgentService, options: NetworkOptions) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    if !options.listen.ip().is_loopback() && options.bearer_token.is_none() {
        tracing::warn!(listen = %options.listen, "listening beyond loopback without --token: anyone who can reach this port can use the agent");
    }
    let in_flight = InFlight::default();
    let rpc = RpcServiceBuilder::new().layer_fn(move |inner| Cancellable { inner, in_flight: in_flight.clone() });
    let http = tower::ServiceBuilder::new().layer(BearerAuthLayer::new(options.bearer_token.clone()));
    let config = ServerConfig::builder()
        .max_request_body_size(options.max_message_bytes)
        .max_response_body_size(options.max_message_bytes.saturating_mul(4))
        .max_connections(options.max_connections)
        .build();
    let server = Server::builder()
        .set_config(config)
        .set_rpc_middleware(rpc)
        .set_http_middleware(http)
        .build(options.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", options.listen))?;
    let addr = server.local_addr()?;
    let handle = server.start(module(service));
    Ok((addr, handle))
}
