//! Sorting an incoming JSON value into the four things a peer can receive.

use serde_json::{Map, Value};

use crate::protocol::{RequestId, ResponseError, RpcError};

/// An incoming message, classified.
#[derive(Debug)]
pub enum Incoming {
    Request {
        id: RequestId,
        method: String,
        params: Option<Value>,
    },
    Notification {
        method: String,
        params: Option<Value>,
    },
    Response {
        id: RequestId,
        result: Result<Value, RpcError>,
    },
    /// Not a valid message: answer with this error.
    Invalid {
        id: Option<RequestId>,
        error: RpcError,
    },
    /// Not answerable (a bad notification, a response without an id): log and drop.
    Ignore(String),
}

enum Id {
    Absent,
    Valid(RequestId),
    Invalid,
}

fn read_id(obj: &Map<String, Value>) -> Id {
    match obj.get("id") {
        None => Id::Absent,
        Some(Value::String(s)) => Id::Valid(RequestId::String(s.clone())),
        Some(Value::Number(n)) => n.as_i64().map_or(Id::Invalid, |n| Id::Valid(n.into())),
        Some(_) => Id::Invalid,
    }
}

/// Classifies one decoded body. Batches (arrays) are not supported and are answered -32600.
pub fn classify(value: Value) -> Incoming {
    let obj = match value {
        Value::Object(obj) => obj,
        Value::Array(_) => {
            return Incoming::Invalid { id: None, error: RpcError::invalid_request("batches are not supported") }
        }
        _ => {
            return Incoming::Invalid {
                id: None,
                error: RpcError::invalid_request("a JSON-RPC message must be an object"),
            }
        }
    };
    let id = read_id(&obj);
    let valid_version = obj.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
    let invalid = |id: Id, msg: &str| Incoming::Invalid {
        id: match id {
            Id::Valid(id) => Some(id),
            _ => None,
        },
        error: RpcError::invalid_request(msg.to_string()),
    };
    if let Some(method) = obj.get("method") {
        let Some(method) = method.as_str().map(str::to_owned) else {
            return invalid(id, "`method` must be a string");
        };
        let params = obj.get("params").filter(|p| !p.is_null()).cloned();
        return match (id, valid_version) {
            (Id::Absent, true) => Incoming::Notification { method, params },
            (Id::Absent, false) => Incoming::Ignore(format!("notification `{method}` without \"jsonrpc\": \"2.0\"")),
            (Id::Valid(id), true) => Incoming::Request { id, method, params },
            (id @ Id::Valid(_), false) => invalid(id, "`jsonrpc` must be \"2.0\""),
            (Id::Invalid, _) => invalid(Id::Invalid, "`id` must be an integer or a string"),
        };
    }
    if obj.contains_key("result") || obj.contains_key("error") {
        let Id::Valid(id) = id else {
            let detail = obj.get("error").map(Value::to_string).unwrap_or_default();
            return Incoming::Ignore(format!("response without a usable id: {detail}"));
        };
        let result = match obj.get("error") {
            Some(e) => match serde_json::from_value::<ResponseError>(e.clone()) {
                Ok(e) => Err(e.into()),
                Err(err) => Err(RpcError::internal(format!("peer sent a malformed error: {err}"))),
            },
            None => Ok(obj.get("result").cloned().unwrap_or(Value::Null)),
        };
        return Incoming::Response { id, result };
    }
    invalid(id, "not a JSON-RPC 2.0 request, notification or response")
}
