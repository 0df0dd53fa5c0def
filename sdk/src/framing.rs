//! The LSP base protocol: `Content-Length: N\r\n\r\n<body>`, as a tokio-util codec.
//!
//! Errors come in two kinds. A *recoverable* error (bad JSON, bad UTF-8, an oversized body whose
//! length is known) consumes its frame and is yielded as an item, so the stream stays in sync.
//! A *fatal* error (no usable length, a broken header, EOF inside a frame, I/O) ends the stream,
//! because the next frame's start can no longer be found. Either kind maps to the JSON-RPC error
//! response a connection sends back before going on or closing.
//!
//! The header rules, the same in the Python SDK (`tests/sdk-cases/` holds both to them): a header
//! block of at most 8 KiB; header names case-insensitive; a repeated `Content-Length` with the same
//! value is tolerated, with another value it is fatal (which one is right?); a broken header line
//! is fatal before the length is known and recoverable after it (the body is skipped); a
//! `Content-Type` charset other than UTF-8 is refused the same way; other headers are ignored.

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
    #[error("conflicting Content-Length headers ({0} and {1})")]
    ConflictingLength(usize, usize),
    #[error("frame body of {len} bytes exceeds the limit of {max} bytes")]
    Oversized { len: usize, max: usize },
    /// A header fault found once the body's length was known: the body is skipped.
    #[error("{0}")]
    BadHeaderSkipped(String),
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
        !matches!(
            self,
            FrameError::Oversized { .. }
                | FrameError::BadHeaderSkipped(_)
                | FrameError::InvalidUtf8
                | FrameError::InvalidJson(_)
        )
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
            | FrameError::ConflictingLength(..)
            | FrameError::BadHeaderSkipped(_)
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

    /// Parses a complete header block: the body's length, and a fault that leaves the body to be
    /// skipped; `Ok(None)` while more bytes are needed.
    fn decode_header(&mut self, src: &mut BytesMut) -> Result<Option<(usize, Option<String>)>, FrameError> {
        let mut pos = 0;
        let mut length = None;
        let mut problem: Option<String> = None;
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
            if next > MAX_HEADER_SIZE {
                return Err(FrameError::HeaderTooLong);
            }
            if line.is_empty() {
                if pos == 0 {
                    // A stray blank line between frames: tolerated, skipped.
                    src.advance(next);
                    continue;
                }
                src.advance(next);
                return length.map(|n| Some((n, problem))).ok_or(FrameError::MissingContentLength);
            }
            pos = next;
            let header = match parse_header_line(line) {
                Ok(h) => h,
                Err(e) if length.is_none() => return Err(e),
                Err(e) => {
                    problem.get_or_insert(e.to_string());
                    continue;
                }
            };
            match header {
                Header::Length(n) => match length {
                    Some(m) if m != n => return Err(FrameError::ConflictingLength(m, n)),
                    _ => length = Some(n),
                },
                Header::Charset(c) if !c.eq_ignore_ascii_case("utf-8") && !c.eq_ignore_ascii_case("utf8") => {
                    problem.get_or_insert(format!("unsupported charset {c:?} (only utf-8)"));
                }
                Header::Charset(_) | Header::Other => {}
            }
        }
    }
}

enum Header {
    Length(usize),
    /// `Content-Type`'s charset parameter.
    Charset(String),
    Other,
}

fn parse_header_line(line: &[u8]) -> Result<Header, FrameError> {
    let text = std::str::from_utf8(line)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| FrameError::BadHeaderLine(clip(&String::from_utf8_lossy(line))))?;
    let (name, value) = text.split_once(':').ok_or_else(|| FrameError::BadHeaderLine(clip(text)))?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(FrameError::BadHeaderLine(clip(text)));
    }
    let value = value.trim();
    if name.eq_ignore_ascii_case("content-length") {
        if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FrameError::BadLength(clip(value)));
        }
        return value.parse().map(Header::Length).map_err(|_| FrameError::BadLength(clip(value)));
    }
    if name.eq_ignore_ascii_case("content-type") {
        let charset = value.split(';').skip(1).find_map(|param| {
            let (k, v) = param.split_once('=')?;
            k.trim().eq_ignore_ascii_case("charset").then(|| v.trim().trim_matches('"').to_string())
        });
        return Ok(charset.map_or(Header::Other, Header::Charset));
    }
    Ok(Header::Other)
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
                    let Some((len, problem)) = self.decode_header(src)? else {
                        return Ok(None);
                    };
                    if let Some(problem) = problem {
                        self.state = State::Discard(len);
                        return Ok(Some(Err(FrameError::BadHeaderSkipped(problem))));
                    }
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
