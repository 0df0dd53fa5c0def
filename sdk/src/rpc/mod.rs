//! JSON-RPC 2.0 peers, domain-agnostic: a [`Connection`] over any [`crate::transport::Transport`].
//!
//! Behaviour every peer gets for free:
//! * incoming requests run concurrently, notifications one at a time in arrival order;
//! * `$/cancelRequest` cancels an in-flight incoming request, which is still answered (-32800,
//!   or its result when it finished first);
//! * unknown methods get -32601, bad params -32602, a JSON value that is not JSON-RPC -32600,
//!   bad JSON -32700; a handler panic gets -32603 and the connection goes on;
//! * batches (JSON arrays) are not supported: they are answered with one -32600, id null;
//! * outgoing requests time out (configurable) and all fail at once when the peer goes away.

mod connection;
mod handler;
mod message;

pub use connection::{CallError, Connection, ConnectionOptions};
pub use handler::{
    parse_params, to_result, BoxFuture, Handler, Methods, NoHandler, NotificationContext, RequestContext, Router,
};
pub use message::{classify, Incoming};
