//! One WebSocket connection: the SDK's JSON-RPC peer over WebSocket messages, behind the same
//! lifecycle layer as stdio, so ids, errors, cancellation, `initialize` and `shutdown` behave as
//! on stdio and as `docs/protocol.md` says.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use stepwire_sdk::framing::{decode_body, Decoded, FrameError};
use stepwire_sdk::lifecycle::Lifecycle;
use stepwire_sdk::rpc::{Connection, ConnectionOptions};
use stepwire_sdk::transport::Transport;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use super::ConnectionLimits;
use crate::server::service::{AgentService, InFlight, Session};

/// Serves one upgraded connection until the host closes it, goes idle or the server stops.
pub async fn serve(upgraded: Upgraded, service: AgentService, limits: ConnectionLimits, name: String) {
    let config = WebSocketConfig::default()
        .max_message_size(Some(limits.max_message_bytes))
        .max_frame_size(Some(limits.max_message_bytes));
    let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    let (sink, stream) = ws.split();
    let session = Session::new(service, limits.max_in_flight);
    let in_flight = session.in_flight();
    let messages = incoming(stream, in_flight, limits.idle_timeout, name.clone());
    let sink = sink
        .sink_map_err(|e| FrameError::Io(std::io::Error::other(e.to_string())))
        .with(|value: Value| async move { Ok::<_, FrameError>(Message::text(value.to_string())) });
    let transport = Transport::from_messages(messages.boxed(), Box::pin(sink), limits.max_message_bytes);
    let connection = Connection::start(
        transport,
        Lifecycle::new(session),
        ConnectionOptions { name, request_timeout: None, ..Default::default() },
    );
    let reason = connection.closed().await;
    tracing::debug!(peer = connection.name(), "WebSocket closed: {reason}");
}

/// The host's messages as the SDK's transport wants them. Ends when the host closes, when the
/// connection has had no message and no request running for `idle` (a slot held by nobody), or
/// at the first fatal fault (an oversized message is answered -32600, then the connection ends).
fn incoming<S>(
    stream: S,
    in_flight: InFlight,
    idle: Duration,
    name: String,
) -> impl futures::Stream<Item = Result<Decoded, FrameError>> + Send
where
    S: futures::Stream<Item = Result<Message, tungstenite::Error>> + Send + Unpin + 'static,
{
    futures::stream::unfold(Some(stream), move |state| {
        let in_flight = in_flight.clone();
        let name = name.clone();
        async move {
            let mut stream = state?;
            loop {
                let next = match tokio::time::timeout(idle, stream.next()).await {
                    Err(_) if in_flight.count() > 0 => continue,
                    Err(_) => {
                        tracing::info!(peer = %name, "closing a WebSocket idle for {idle:?} (--idle-timeout)");
                        return None;
                    }
                    Ok(next) => next,
                };
                let item = match next? {
                    Ok(Message::Text(text)) => Ok(decode_body(text.as_bytes())),
                    Ok(Message::Binary(bytes)) => Ok(decode_body(&bytes)),
                    Ok(Message::Close(_)) => return None,
                    Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                    Err(tungstenite::Error::Capacity(tungstenite::error::CapacityError::MessageTooLong {
                        size,
                        max_size,
                    })) => return Some((Err(FrameError::Oversized { len: size, max: max_size }), None)),
                    Err(e) => return Some((Err(FrameError::Io(std::io::Error::other(e.to_string()))), None)),
                };
                return Some((item, Some(stream)));
            }
        }
    })
}
