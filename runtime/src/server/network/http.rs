//! One HTTP POST, one JSON-RPC message. Nothing ties one POST to the next, so HTTP is stateless:
//! `initialize` is answered (and checks the version) but not required, `shutdown` is answered and
//! changes nothing, notifications get `204 No Content`, and batches are refused as on every
//! transport (-32600).

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming as Body;
use hyper::{Request, Response, StatusCode};
use serde_json::Value;
use stepwire_sdk::framing::decode_body;
use stepwire_sdk::protocol::methods::{Initialize, RequestMethod, Shutdown};
use stepwire_sdk::protocol::{RequestId, Response as RpcResponse, RpcError};
use stepwire_sdk::rpc::{classify, Incoming};
use tokio_util::sync::CancellationToken;

use crate::server::service::AgentService;

/// Answers one POST. The call is cancelled if this future is dropped (the client went away).
pub async fn answer(req: Request<Body>, service: AgentService, max_bytes: usize) -> Response<Full<Bytes>> {
    let body = match Limited::new(req.into_body(), max_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            let error = RpcError::invalid_request(format!(
                "request body over the limit of {max_bytes} bytes (--max-message-bytes)"
            ));
            return json(StatusCode::PAYLOAD_TOO_LARGE, &RpcResponse::err(None, error.into()));
        }
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("cannot read the request body: {e}")),
    };
    let value = match decode_body(&body) {
        Ok(value) => value,
        Err(fault) => {
            let error = fault.rpc_error().unwrap_or_else(|| RpcError::parse_error(fault.to_string()));
            return json(StatusCode::OK, &RpcResponse::err(None, error.into()));
        }
    };
    match classify(value) {
        Incoming::Request { id, method, params } => {
            let cancel = CancellationToken::new();
            let _cancel_on_drop = cancel.clone().drop_guard();
            let result = call(&service, &method, params, &cancel).await;
            json(StatusCode::OK, &reply(id, result))
        }
        Incoming::Notification { method, .. } => {
            tracing::debug!(method, "notification over HTTP ignored");
            empty(StatusCode::NO_CONTENT)
        }
        Incoming::Invalid { id, error } => json(StatusCode::OK, &RpcResponse::err(id, error.into())),
        Incoming::Response { .. } | Incoming::Ignore(_) => {
            let error = RpcError::invalid_request("the server makes no requests over HTTP: send a request");
            json(StatusCode::OK, &RpcResponse::err(None, error.into()))
        }
    }
}

async fn call(
    service: &AgentService,
    method: &str,
    params: Option<Value>,
    cancel: &CancellationToken,
) -> Result<Value, RpcError> {
    match method {
        Initialize::NAME => service.initialize(params),
        Shutdown::NAME => Ok(Value::Null),
        _ => service.handle(method, params, cancel).await,
    }
}

fn reply(id: RequestId, result: Result<Value, RpcError>) -> RpcResponse {
    match result {
        Ok(value) => RpcResponse::ok(id, value),
        Err(e) => RpcResponse::err(Some(id), e.into()),
    }
}

fn json(status: StatusCode, body: &RpcResponse) -> Response<Full<Bytes>> {
    let text = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, "application/json".parse().expect("static"));
    response
}

pub fn plain(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message)));
    *response.status_mut() = status;
    response
}

pub fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
