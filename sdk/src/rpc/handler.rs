//! What a connection calls for incoming messages, and a typed router that builds one.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::Connection;
use crate::protocol::methods::{NotificationMethod, RequestMethod};
use crate::protocol::{RequestId, RpcError};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a request handler gets besides the params.
#[derive(Clone)]
pub struct RequestContext {
    pub id: RequestId,
    pub method: String,
    /// Cancelled by `$/cancelRequest` (or when the connection ends). The connection answers
    /// -32800 as soon as it fires; a handler may watch it to stop work early.
    pub cancel: CancellationToken,
    /// The connection the request came on, to send notifications (progress, logs) or close it.
    pub connection: Connection,
}

/// What a notification handler gets besides the method and params.
#[derive(Clone)]
pub struct NotificationContext {
    pub connection: Connection,
}

/// Serves incoming messages.
///
/// Both methods are called synchronously in arrival order, so a handler can take decisions that
/// depend on message order (lifecycle state, queueing) before returning its future. Request
/// futures then run concurrently; notification futures run one at a time, in order.
/// Panics, in either part, are caught: a request is answered -32603.
pub trait Handler: Send + Sync + 'static {
    fn request(&self, ctx: RequestContext, params: Option<Value>) -> BoxFuture<Result<Value, RpcError>>;

    fn notification(&self, ctx: NotificationContext, method: &str, params: Option<Value>) -> BoxFuture<()> {
        let _ = (ctx, params);
        tracing::debug!(method, "notification ignored");
        Box::pin(async {})
    }
}

/// A handler for a peer that serves nothing (a pure client): every request gets -32601.
pub struct NoHandler;

impl Handler for NoHandler {
    fn request(&self, ctx: RequestContext, _: Option<Value>) -> BoxFuture<Result<Value, RpcError>> {
        Box::pin(async move { Err(RpcError::method_not_found(&ctx.method)) })
    }
}

/// Deserialises params; a mismatch is -32602 naming the serde error. Absent params read as
/// `null`, or as `{}` for types that need an object.
pub fn parse_params<P: DeserializeOwned>(method: &str, params: Option<Value>) -> Result<P, RpcError> {
    let value = params.unwrap_or(Value::Null);
    let was_null = value.is_null();
    match serde_json::from_value::<P>(value) {
        Ok(p) => Ok(p),
        Err(e) if was_null => serde_json::from_value::<P>(Value::Object(Default::default()))
            .map_err(|_| RpcError::invalid_params(format!("invalid params for `{method}`: {e}"))),
        Err(e) => Err(RpcError::invalid_params(format!("invalid params for `{method}`: {e}"))),
    }
}

/// Serialises a result; a failure here is the handler's bug, so -32603.
pub fn to_result<T: Serialize>(value: T) -> Result<Value, RpcError> {
    serde_json::to_value(value).map_err(|e| RpcError::internal(format!("cannot serialise result: {e}")))
}

type MethodFn<C> = Arc<dyn Fn(Option<Value>, C) -> BoxFuture<Result<Value, RpcError>> + Send + Sync>;
type NotificationFn = Arc<dyn Fn(NotificationContext, Option<Value>) -> BoxFuture<()> + Send + Sync>;

/// Typed request functions by method name, apart from any transport: `C` is what a call gets
/// besides its params (a [`RequestContext`] on a connection; a cancellation token on a stateless
/// HTTP call). Params are parsed and results serialised here, once for every server.
pub struct Methods<C> {
    table: HashMap<&'static str, MethodFn<C>>,
}

impl<C> Default for Methods<C> {
    fn default() -> Self {
        Methods { table: HashMap::new() }
    }
}

impl<C: Send + 'static> Methods<C> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves request method `M` with `f`. `f` itself runs when the call arrives (on a
    /// connection, in arrival order, so it may queue work in order); its future runs after.
    pub fn on<M, F, Fut>(self, f: F) -> Self
    where
        M: RequestMethod,
        F: Fn(M::Params, C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<M::Result, RpcError>> + Send + 'static,
    {
        self.on_json::<M, _, _>(move |params, ctx| {
            let result = f(params, ctx);
            async move { to_result(result.await?) }
        })
    }

    /// As [`Methods::on`], for a function whose result is already `M::Result` as JSON (computed
    /// on another task, say).
    pub fn on_json<M, F, Fut>(mut self, f: F) -> Self
    where
        M: RequestMethod,
        F: Fn(M::Params, C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, RpcError>> + Send + 'static,
    {
        let call: MethodFn<C> = Arc::new(move |params, ctx| match parse_params::<M::Params>(M::NAME, params) {
            Ok(params) => Box::pin(f(params, ctx)),
            Err(e) => Box::pin(async move { Err(e) }),
        });
        self.table.insert(M::NAME, call);
        self
    }

    /// Whether `method` is served.
    pub fn serves(&self, method: &str) -> bool {
        self.table.contains_key(method)
    }

    /// Runs `method`; one that is not served gets -32601.
    pub fn call(&self, method: &str, params: Option<Value>, ctx: C) -> BoxFuture<Result<Value, RpcError>> {
        match self.table.get(method) {
            Some(f) => f(params, ctx),
            None => {
                let error = RpcError::method_not_found(method);
                Box::pin(async move { Err(error) })
            }
        }
    }
}

/// A [`Handler`] built from typed functions, one per method. Unknown requests get -32601;
/// unknown notifications are ignored.
#[derive(Default)]
pub struct Router {
    requests: Methods<RequestContext>,
    notifications: HashMap<&'static str, NotificationFn>,
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves request method `M` with `f`.
    pub fn request<M, F, Fut>(mut self, f: F) -> Self
    where
        M: RequestMethod,
        F: Fn(M::Params, RequestContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<M::Result, RpcError>> + Send + 'static,
    {
        self.requests = self.requests.on::<M, F, Fut>(f);
        self
    }

    /// Serves notification method `N` with `f`; bad params are logged and dropped.
    pub fn notification<N, F, Fut>(mut self, f: F) -> Self
    where
        N: NotificationMethod,
        F: Fn(N::Params, NotificationContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let f = Arc::new(f);
        let call: NotificationFn = Arc::new(move |ctx, params| match parse_params::<N::Params>(N::NAME, params) {
            Ok(p) => Box::pin(f(p, ctx)),
            Err(e) => {
                tracing::warn!("{}", e.message);
                Box::pin(async {})
            }
        });
        self.notifications.insert(N::NAME, call);
        self
    }
}

impl Handler for Router {
    fn request(&self, ctx: RequestContext, params: Option<Value>) -> BoxFuture<Result<Value, RpcError>> {
        let method = ctx.method.clone();
        self.requests.call(&method, params, ctx)
    }

    fn notification(&self, ctx: NotificationContext, method: &str, params: Option<Value>) -> BoxFuture<()> {
        match self.notifications.get(method) {
            Some(f) => f(ctx, params),
            None => {
                tracing::debug!(method, "notification ignored");
                Box::pin(async {})
            }
        }
    }
}
