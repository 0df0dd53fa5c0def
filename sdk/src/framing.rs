//! The LSP base protocol: `Content-Length: N\r\n\r\n<body>`, as a tokio-util codec.
//!
//! Errors come in two kinds. A *recoverable* error (bad JSON, bad UTF-8, an oversized body whose
//! length is known) consumes its frame and is yielded as an item, so the stream stays in sync.
//! A *fatal* error (no usable length, a broken header, EOF inside a frame, I/O) ends the stream,
//! because the next frame's start can no longer be found. Either kind maps to the JSON-RPC error
//! response a connection sends back before going on or closing.

use bytes::{Buf, BytesMut};
use serde::Serialize;
use serde_json::Value;
use tokio_util::codec::{Decoder, Encoder};

use crate::protocol::{Response, RpcError};

/// Default largest body accepted: 4 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// Largest header block read before giving up: real headers are well under 100 bytes.
const MAX_HEADER_SIZE: usize = 8 * 1024;

/// Something wrong with a frame, or with the stream carrying it.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame header has no Content-Length")]
    MissingContentLength,
    #[error("bad frame header line: {0:?}")]
    BadHeaderLine(String),
    #[error("header block longer than {MAX_HEADER_SIZE} bytes")]
    HeaderTooLong,
    #[error("Content-Length is not a number: {0:?}")]
    BadLength(String),
    #[error("frame body of {len} bytes exceeds the limit of {max} bytes")]
    Oversized { len: usize, max: usize },
    #[error("frame body is not valid UTF-8")]
    InvalidUtf8,
    #[error("frame body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("stream ended inside a frame")]
    UnexpectedEof,
    #[error("cannot serialise message: {0}")]
    Serialize(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// True when the stream cannot go on after this error.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, FrameError::Oversized { .. } | FrameError::InvalidUtf8 | FrameError::InvalidJson(_))
    }

    /// The JSON-RPC error this fault is answered with, or `None` when nothing can be sent
    /// (the stream is gone).
    pub fn rpc_error(&self) -> Option<RpcError> {
        match self {
            FrameError::InvalidUtf8 | FrameError::InvalidJson(_) => Some(RpcError::parse_error(self.to_string())),
            FrameError::MissingContentLength
            | FrameError::BadHeaderLine(_)
            | FrameError::HeaderTooLong
            | FrameError::BadLength(_)
            | FrameError::Oversized { .. } => Some(RpcError::invalid_request(self.to_string())),
            FrameError::UnexpectedEof | FrameError::Serialize(_) | FrameError::Io(_) => None,
        }
    }

    /// The response (id null) answering this fault, when one can be sent.
    pub fn response(&self) -> Option<Response> {
        self.rpc_error().map(|e| Response::err(None, e.into()))
    }
}

/// What the decoder yields: a JSON body, or a recoverable fault whose frame was consumed.
pub type Decoded = Result<Value, FrameError>;

/// One message body (a frame's, or a WebSocket message's) as JSON.
pub fn decode_body(body: &[u8]) -> Decoded {
    let text = std::str::from_utf8(body).map_err(|_| FrameError::InvalidUtf8)?;
    serde_json::from_str::<Value>(text).map_err(|e| FrameError::InvalidJson(e.to_string()))
}

#[derive(Debug, Clone, Copy)]
enum State {
    Header,
    Body(usize),
    Discard(usize),
}

/// The `Content-Length` codec. Decodes into [`Decoded`], encodes anything `Serialize`.
#[derive(Debug, Clone)]
pub struct LspCodec {
    max_size: usize,
    state: State,
}

impl Default for LspCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGE_SIZE)
    }
}

impl LspCodec {
    pub fn new(max_size: usize) -> Self {
        LspCodec { max_size, state: State::Header }
    }

    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Parses a complete header block; `Ok(None)` while more bytes are needed.
    fn decode_header(&mut self, src: &mut BytesMut) -> Result<Option<usize>, FrameError> {
        let mut pos = 0;
        let mut length = None;
        loop {
            let Some(nl) = src[pos..].iter().position(|&b| b == b'\n') else {
                if src.len() > MAX_HEADER_SIZE {
                    return Err(FrameError::HeaderTooLong);
                }
                return Ok(None);
            };
            let raw = &src[pos..pos + nl];
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            let next = pos + nl + 1;
            if line.is_empty() {
                if pos == 0 {
                    // A stray blank line between frames: tolerated, skipped.
                    src.advance(next);
                    continue;
                }
                src.advance(next);
                return length.map(Some).ok_or(FrameError::MissingContentLength);
            }
            let text = std::str::from_utf8(line)
                .map_err(|_| FrameError::BadHeaderLine(String::from_utf8_lossy(line).into()))?;
            let (name, value) = text.split_once(':').ok_or_else(|| FrameError::BadHeaderLine(clip(text)))?;
            let name = name.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(FrameError::BadHeaderLine(clip(text)));
            }
            if name.eq_ignore_ascii_case("content-length") {
                let value = value.trim();
                let n = value.parse::<usize>().map_err(|_| FrameError::BadLength(clip(value)))?;
                length = Some(n);
            }
            // Content-Type and any other header are tolerated and ignored.
            pos = next;
            if pos > MAX_HEADER_SIZE {
                return Err(FrameError::HeaderTooLong);
            }
        }
    }
}

/// Keeps error messages short when a peer sends a huge garbage line.
fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

impl Decoder for LspCodec {
    type Item = Decoded;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>, FrameError> {
        loop {
            match self.state {
                State::Header => {
                    let Some(len) = self.decode_header(src)? else {
                        return Ok(None);
                    };
                    if len > self.max_size {
                        // Answer now, before the body arrives: a peer that lied about the
                        // length gets its error instead of a silent wait.
                        self.state = State::Discard(len);
                        return Ok(Some(Err(FrameError::Oversized { len, max: self.max_size })));
                    }
                    self.state = State::Body(len);
                    src.reserve(len.saturating_sub(src.len()));
                }
                State::Body(len) => {
                    if src.len() < len {
                        return Ok(None);
                    }
                    let body = src.split_to(len);
                    self.state = State::Header;
                    return Ok(Some(decode_body(&body)));
                }
                State::Discard(remaining) => {
                    let n = remaining.min(src.len());
                    src.advance(n);
                    if n < remaining {
                        self.state = State::Discard(remaining - n);
                        return Ok(None);
                    }
                    self.state = State::Header;
                }
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>, FrameError> {
        if let Some(item) = self.decode(src)? {
            return Ok(Some(item));
        }
        match self.state {
            // The peer gave up inside a body we were throwing away anyway: a clean end.
            State::Discard(_) => Ok(None),
            State::Header if src.iter().all(|b| b.is_ascii_whitespace()) => {
                src.clear();
                Ok(None)
            }
            _ => Err(FrameError::UnexpectedEof),
        }
    }
}

impl<T: Serialize> Encoder<T> for LspCodec {
    type Error = FrameError;

    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), FrameError> {
        let body = serde_json::to_vec(&item).map_err(|e| FrameError::Serialize(e.to_string()))?;
        let header = format!("Content-Length: {}\r\n\r\n", body.len());
        dst.reserve(header.len() + body.len());
        dst.extend_from_slice(header.as_bytes());
        dst.extend_from_slice(&body);
        Ok(())
    }
}

/// One frame as raw bytes: what the encoder writes for `body`. Handy for tests and checkers.
pub fn frame_bytes(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}
