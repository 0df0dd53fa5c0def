//! One transport for every byte stream: framed JSON messages in, framed JSON messages out.
//!
//! Stdio, a child's pipes, TCP and an in-memory pair (byte streams, LSP-framed) and WebSocket
//! (one message per frame, [`Transport::from_messages`]) all become the same [`Transport`], which
//! splits into a reader and a writer so a connection can send while it waits to receive.

use std::pin::Pin;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Sink, SinkExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::framing::{Decoded, FrameError, LspCodec};

type BoxRead = Pin<Box<dyn AsyncRead + Send>>;
type BoxWrite = Pin<Box<dyn AsyncWrite + Send>>;

/// Messages of a message-oriented carrier, decoded (see [`Transport::from_messages`]).
pub type MessageStream = BoxStream<'static, Result<Decoded, FrameError>>;
/// Where a message-oriented carrier's outgoing messages go.
pub type MessageSink = Pin<Box<dyn Sink<Value, Error = FrameError> + Send>>;

enum ReadInner {
    Framed(FramedRead<BoxRead, LspCodec>),
    Messages { stream: MessageStream, max_size: usize },
}

enum WriteInner {
    Framed(FramedWrite<BoxWrite, LspCodec>),
    Messages(MessageSink),
}

/// The receiving half: yields decoded bodies and recoverable frame faults.
pub struct TransportReader {
    inner: ReadInner,
}

impl TransportReader {
    /// The next message. `None` at a clean end of stream; `Some(Err(_))` for a fatal fault,
    /// after which the stream is over; `Some(Ok(Err(_)))` for a recoverable one.
    pub async fn recv(&mut self) -> Option<Result<Decoded, FrameError>> {
        match &mut self.inner {
            ReadInner::Framed(framed) => framed.next().await,
            ReadInner::Messages { stream, .. } => stream.next().await,
        }
    }
}

/// The sending half.
pub struct TransportWriter {
    inner: WriteInner,
}

impl TransportWriter {
    /// Writes one message and flushes it.
    pub async fn send<T: Serialize>(&mut self, msg: T) -> Result<(), FrameError> {
        match &mut self.inner {
            WriteInner::Framed(framed) => framed.send(msg).await,
            WriteInner::Messages(sink) => {
                let value = serde_json::to_value(msg).map_err(|e| FrameError::Serialize(e.to_string()))?;
                sink.send(value).await
            }
        }
    }

    /// Flushes and shuts the write side down (the peer sees EOF).
    pub async fn close(&mut self) -> Result<(), FrameError> {
        match &mut self.inner {
            WriteInner::Framed(framed) => SinkExt::<Value>::close(framed).await,
            WriteInner::Messages(sink) => sink.close().await,
        }
    }
}

/// A framed, bidirectional message stream.
pub struct Transport {
    reader: TransportReader,
    writer: TransportWriter,
}

impl Transport {
    /// Frames any pair of byte streams, with the default size limit.
    pub fn new(read: impl AsyncRead + Send + 'static, write: impl AsyncWrite + Send + 'static) -> Self {
        let read: BoxRead = Box::pin(read);
        let write: BoxWrite = Box::pin(write);
        Transport {
            reader: TransportReader { inner: ReadInner::Framed(FramedRead::new(read, LspCodec::default())) },
            writer: TransportWriter { inner: WriteInner::Framed(FramedWrite::new(write, LspCodec::default())) },
        }
    }

    /// A carrier that delimits messages itself, such as WebSocket: `stream` yields each incoming
    /// message already parsed (a bad one as a recoverable [`FrameError`]), `sink` sends each
    /// outgoing one. `max_size` is the limit the carrier enforces, reported by
    /// [`Transport::max_message_size`].
    pub fn from_messages(stream: MessageStream, sink: MessageSink, max_size: usize) -> Self {
        Transport {
            reader: TransportReader { inner: ReadInner::Messages { stream, max_size } },
            writer: TransportWriter { inner: WriteInner::Messages(sink) },
        }
    }

    /// Sets the largest body accepted on input (byte streams; a message carrier sets its own).
    pub fn with_max_message_size(mut self, max: usize) -> Self {
        if let ReadInner::Framed(framed) = &mut self.reader.inner {
            *framed.decoder_mut() = LspCodec::new(max);
        }
        self
    }

    /// This process's stdin and stdout.
    ///
    /// Stdin is read on a plain thread rather than tokio's blocking pool, so a process that has
    /// finished serving can return from `main` without waiting for a read that never ends.
    pub fn stdio() -> Self {
        Transport::new(stdin_reader(), tokio::io::stdout())
    }

    /// A spawned child's stdin and stdout (both must have been piped). `None` when either was
    /// already taken.
    pub fn child(child: &mut tokio::process::Child) -> Option<Self> {
        let stdin = child.stdin.take()?;
        let stdout = child.stdout.take()?;
        Some(Transport::new(stdout, stdin))
    }

    /// A TCP stream.
    pub fn tcp(stream: tokio::net::TcpStream) -> Self {
        let (read, write) = stream.into_split();
        Transport::new(read, write)
    }

    /// Two transports connected to each other in memory, for tests.
    pub fn pair() -> (Self, Self) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (ar, aw) = tokio::io::split(a);
        let (br, bw) = tokio::io::split(b);
        (Transport::new(ar, aw), Transport::new(br, bw))
    }

    pub async fn send<T: Serialize>(&mut self, msg: T) -> Result<(), FrameError> {
        self.writer.send(msg).await
    }

    pub async fn recv(&mut self) -> Option<Result<Decoded, FrameError>> {
        self.reader.recv().await
    }

    pub async fn close(&mut self) -> Result<(), FrameError> {
        self.writer.close().await
    }

    pub fn split(self) -> (TransportReader, TransportWriter) {
        (self.reader, self.writer)
    }

    /// The size limit in force on input.
    pub fn max_message_size(&self) -> usize {
        match &self.reader.inner {
            ReadInner::Framed(framed) => framed.decoder().max_size(),
            ReadInner::Messages { max_size, .. } => *max_size,
        }
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").field("max_message_size", &self.max_message_size()).finish()
    }
}

/// Stdin as an `AsyncRead`, fed by a detached thread (see [`Transport::stdio`]).
fn stdin_reader() -> impl AsyncRead + Send + 'static {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let spawned = std::thread::Builder::new().name("stepwire-stdin".into()).spawn(move || {
        use std::io::Read;
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.blocking_send(Ok(Bytes::copy_from_slice(&buf[..n]))).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!("cannot start the stdin reader thread: {e}");
    }
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    tokio_util::io::StreamReader::new(stream)
}
