//! The fuzz targets: each takes one input and must return without panicking, within the
//! watchdog's time, and within its memory bound.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use serde_json::Value;
use stepwire_sdk::framing::{decode_body, LspCodec};
use stepwire_sdk::protocol::methods::*;
use stepwire_sdk::protocol::{jsonrpc, RecordLine};
use stepwire_sdk::rpc::{classify, Incoming};
use tokio_util::codec::Decoder;

use crate::corpus;
use crate::mutate;

/// The frame decoder's body limit while fuzzing: small, so oversized frames are common.
pub const FRAME_LIMIT: usize = 4096;
/// What the decoder may hold beyond a body: its header block limit.
const HEADER_LIMIT: usize = 8 * 1024;

/// A fuzz target: what it draws and what it checks.
pub struct Target {
    pub name: &'static str,
    pub about: &'static str,
    pub strategy: BoxedStrategy<Input>,
    pub check: fn(&Input),
}

/// One input: bytes, and for the frame decoder the sizes of the reads that deliver them.
#[derive(Debug, Clone)]
pub struct Input {
    pub bytes: Vec<u8>,
    pub reads: Vec<u16>,
}

fn bytes_only(seeds: Vec<Vec<u8>>, max_edits: usize) -> BoxedStrategy<Input> {
    mutate::input(Arc::new(seeds), max_edits).prop_map(|bytes| Input { bytes, reads: Vec::new() }).boxed()
}

pub fn all() -> Vec<Target> {
    let frames = mutate::input(Arc::new(corpus::frames()), 6);
    vec![
        Target {
            name: "frame",
            about: "LSP frame decoder: byte streams split into reads of any size",
            strategy: (frames, prop::collection::vec(1u16..2048, 1..8))
                .prop_map(|(bytes, reads)| Input { bytes, reads })
                .boxed(),
            check: check_frames,
        },
        Target {
            name: "message",
            about: "JSON-RPC bodies of both planes into every protocol type",
            strategy: bytes_only(corpus::messages(), 6),
            check: check_message,
        },
        Target {
            name: "manifest",
            about: "policy manifests (stepwire.toml)",
            strategy: bytes_only(corpus::manifests(), 8),
            check: check_manifest,
        },
        Target {
            name: "record",
            about: "recordings as `stepwire run --resume` reads them",
            strategy: bytes_only(corpus::recordings(), 8),
            check: check_record,
        },
    ]
}

/// Feeds the bytes read by read; every decoded body goes through the message check too.
fn check_frames(input: &Input) {
    let mut codec = LspCodec::new(FRAME_LIMIT);
    let mut buf = BytesMut::new();
    let mut rest = &input.bytes[..];
    let mut reads = input.reads.iter().cycle();
    while !rest.is_empty() {
        let n = (*reads.next().unwrap_or(&1) as usize).clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        // Each item consumes input, so a read yields at most as many items as it has bytes.
        for _ in 0..=buf.len() {
            match codec.decode(&mut buf) {
                Ok(Some(Ok(value))) => check_value(value),
                Ok(Some(Err(_))) => {}
                Ok(None) => break,
                Err(_) => return, // fatal: the stream is over, as a connection would end it
            }
        }
        assert!(buf.len() <= FRAME_LIMIT + HEADER_LIMIT + n, "the decoder holds {} bytes, over its limits", buf.len());
    }
    for _ in 0..=buf.len() {
        match codec.decode_eof(&mut buf) {
            Ok(Some(Ok(value))) => check_value(value),
            Ok(Some(Err(_))) => {}
            Ok(None) | Err(_) => return,
        }
    }
    panic!("decode_eof kept yielding items");
}

fn check_message(input: &Input) {
    if let Ok(value) = decode_body(&input.bytes) {
        check_value(value);
    }
}

/// Classifies a message as a peer would, then reads it into every type it could be.
fn check_value(value: Value) {
    let _ = serde_json::from_value::<jsonrpc::Message>(value.clone());
    let _ = serde_json::from_value::<RecordLine>(value.clone());
    match classify(value.clone()) {
        Incoming::Request { method, params, .. } => typed_params(&method, params.unwrap_or(Value::Null)),
        Incoming::Notification { method, params } => typed_params(&method, params.unwrap_or(Value::Null)),
        Incoming::Response { result: Ok(result), .. } => typed_results(result),
        _ => {}
    }
}

macro_rules! each_request {
    ($mac:ident, $($args:tt)*) => {
        $mac!($($args)*; Initialize, Shutdown, EnvTasks, EnvReset, EnvStep, EnvAdmissibleActions,
              EnvExpertAction, AgentPlan, AgentAct, AgentProgress, AgentStep)
    };
}

macro_rules! params_of {
    ($method:expr, $params:expr; $($m:ty),*) => {{
        let mut known = false;
        $(
            if $method == <$m as RequestMethod>::NAME {
                known = true;
                let _ = serde_json::from_value::<<$m as RequestMethod>::Params>($params.clone());
            }
        )*
        known
    }};
}

macro_rules! results_of {
    ($result:expr; $($m:ty),*) => {
        $( let _ = serde_json::from_value::<<$m as RequestMethod>::Result>($result.clone()); )*
    };
}

fn typed_params(method: &str, params: Value) {
    let known = each_request!(params_of, method, params);
    let notification = |name: &str| method == name;
    if notification(CancelRequest::NAME) {
        let _ = serde_json::from_value::<<CancelRequest as NotificationMethod>::Params>(params.clone());
    } else if notification(Progress::NAME) {
        let _ = serde_json::from_value::<<Progress as NotificationMethod>::Params>(params.clone());
    } else if notification(LogMessage::NAME) {
        let _ = serde_json::from_value::<<LogMessage as NotificationMethod>::Params>(params.clone());
    } else if notification(Initialized::NAME) {
        let _ = serde_json::from_value::<<Initialized as NotificationMethod>::Params>(params.clone());
    } else if !known {
        // An unknown method still exercises every params type.
        for name in [AgentStep::NAME, EnvReset::NAME, EnvStep::NAME, Initialize::NAME, AgentAct::NAME] {
            each_request!(params_of, name, params);
        }
    }
}

fn typed_results(result: Value) {
    each_request!(results_of, result);
}

fn check_manifest(input: &Input) {
    let text = String::from_utf8_lossy(&input.bytes);
    let _ = stepwire_onnx::manifest::Manifest::parse(&text, Path::new("/nonexistent/fuzz/stepwire.toml"));
}

fn check_record(input: &Input) {
    let _ = stepwire_runtime::runner::resume::scan(Cursor::new(&input.bytes));
    for line in input.bytes.split(|&b| b == b'\n') {
        let _ = serde_json::from_slice::<RecordLine>(line);
    }
}
