//! The Content-Length codec fed raw bytes: round trips and every kind of bad frame.

use std::time::Duration;

use bytes::BytesMut;
use serde_json::{json, Value};
use stepwire_sdk::framing::{frame_bytes, FrameError, LspCodec};
use stepwire_sdk::rpc::{Connection, ConnectionOptions, NoHandler};
use stepwire_sdk::transport::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{Decoder, Encoder};

/// Decodes everything in `bytes`, EOF included; stops at the first fatal error.
fn decode_all(codec: &mut LspCodec, bytes: &[u8]) -> Vec<Result<Result<Value, String>, String>> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(item)) => out.push(Ok(item.map_err(|e| e.to_string()))),
            Ok(None) => return out,
            Err(e) => {
                out.push(Err(e.to_string()));
                return out;
            }
        }
    }
}

#[test]
fn round_trip_and_byte_by_byte() {
    let mut codec = LspCodec::default();
    let mut buf = BytesMut::new();
    let msgs = [json!({"a": 1}), json!({"text": "héllo ✓"}), json!([1, 2, 3])];
    for m in &msgs {
        codec.encode(m, &mut buf).unwrap();
    }
    // Fed one byte at a time, the decoder must still find every frame.
    let bytes = buf.to_vec();
    let mut codec = LspCodec::default();
    let mut feed = BytesMut::new();
    let mut got = Vec::new();
    for b in bytes {
        feed.extend_from_slice(&[b]);
        while let Some(item) = codec.decode(&mut feed).unwrap() {
            got.push(item.unwrap());
        }
    }
    assert_eq!(got, msgs);
}

#[test]
fn tolerates_content_type_case_and_blank_lines() {
    let raw = b"\r\ncontent-type: application/vscode-jsonrpc; charset=utf-8\r\nCONTENT-LENGTH: 2\r\n\r\n{}";
    let got = decode_all(&mut LspCodec::default(), raw);
    assert_eq!(got, vec![Ok(Ok(json!({})))]);
}

#[test]
fn bad_json_and_utf8_are_consumed_and_the_stream_goes_on() {
    let mut raw = frame_bytes(b"{not json");
    raw.extend(frame_bytes(&[0xff, 0xfe, b'{', b'}']));
    raw.extend(frame_bytes(b"{\"ok\":true}"));
    let got = decode_all(&mut LspCodec::default(), &raw);
    assert_eq!(got.len(), 3);
    assert!(got[0].as_ref().unwrap().as_ref().unwrap_err().contains("not valid JSON"));
    assert!(got[1].as_ref().unwrap().as_ref().unwrap_err().contains("UTF-8"));
    assert_eq!(got[2], Ok(Ok(json!({"ok": true}))));
}

#[test]
fn oversized_body_is_reported_at_once_then_skipped() {
    let mut codec = LspCodec::new(10);
    let mut buf = BytesMut::from(&b"Content-Length: 20\r\n\r\n"[..]);
    // Reported from the header alone, before any body byte arrives.
    let first = codec.decode(&mut buf).unwrap().unwrap();
    assert!(matches!(first, Err(FrameError::Oversized { len: 20, max: 10 })));
    buf.extend_from_slice(&[b'x'; 20]);
    buf.extend_from_slice(&frame_bytes(b"{}"));
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap().unwrap(), json!({}));
}

#[test]
fn fatal_header_faults_are_distinct() {
    let cases: [(&[u8], &str); 5] = [
        (b"Content-Type: x\r\n\r\n{}", "no Content-Length"),
        (b"garbage line\r\n", "bad frame header line"),
        (b"Content-Length: twelve\r\n\r\n", "not a number"),
        (b"Content-Length: -5\r\n\r\n", "not a number"),
        (b"Content-Length: 10\r\n\r\n{}", "ended inside a frame"),
    ];
    for (raw, expected) in cases {
        let got = decode_all(&mut LspCodec::default(), raw);
        let last = got.last().unwrap().as_ref().unwrap_err();
        assert!(last.contains(expected), "{raw:?}: {last}");
    }
    let huge = vec![b'a'; 20_000];
    let got = decode_all(&mut LspCodec::default(), &huge);
    assert!(got[0].as_ref().unwrap_err().contains("header block longer"));
}

#[test]
fn fault_codes() {
    assert_eq!(FrameError::InvalidJson("x".into()).rpc_error().unwrap().code.code(), -32700);
    assert_eq!(FrameError::InvalidUtf8.rpc_error().unwrap().code.code(), -32700);
    assert_eq!(FrameError::Oversized { len: 2, max: 1 }.rpc_error().unwrap().code.code(), -32600);
    assert_eq!(FrameError::MissingContentLength.rpc_error().unwrap().code.code(), -32600);
    assert!(FrameError::UnexpectedEof.rpc_error().is_none());
    assert!(!FrameError::InvalidJson("x".into()).is_fatal());
    assert!(FrameError::BadLength("x".into()).is_fatal());
}

/// Raw bytes into a live connection: what comes back, frame by frame, until it closes.
async fn answers_to(raw: Vec<u8>, max: usize) -> Vec<Value> {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (their_read, their_write) = tokio::io::split(theirs);
    let transport = Transport::new(their_read, their_write).with_max_message_size(max);
    let conn = Connection::start(transport, NoHandler, ConnectionOptions::default());
    let (mut read, mut write) = tokio::io::split(ours);
    write.write_all(&raw).await.unwrap();
    write.shutdown().await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), read.read_to_end(&mut out)).await.unwrap().unwrap();
    conn.closed().await;
    let mut codec = LspCodec::default();
    decode_all(&mut codec, &out).into_iter().map(|r| r.unwrap().unwrap()).collect()
}

fn code(v: &Value) -> i64 {
    v["error"]["code"].as_i64().unwrap()
}

#[tokio::test]
async fn connection_answers_bad_frames_and_resynchronises() {
    let mut raw = frame_bytes(b"{oops");
    raw.extend(b"Content-Length: 100\r\n\r\n");
    raw.extend([b' '; 100]);
    raw.extend(frame_bytes(br#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#));
    raw.extend(frame_bytes(br#"[{"jsonrpc":"2.0","id":2,"method":"nope"}]"#));
    raw.extend(frame_bytes(br#"{"jsonrpc":"1.0","id":3,"method":"nope"}"#));
    raw.extend(frame_bytes(br#"{"hello":"world"}"#));
    raw.extend(frame_bytes(br#"{"jsonrpc":"2.0","id":{"x":1},"method":"nope"}"#));
    let got = answers_to(raw, 50).await;
    // Requests are served concurrently, so the -32601 may come in any position.
    let mut codes: Vec<i64> = got.iter().map(code).collect();
    codes.sort();
    assert_eq!(codes, vec![-32700, -32601, -32600, -32600, -32600, -32600, -32600]);
    assert_eq!((code(&got[0]), &got[0]["id"]), (-32700, &Value::Null));
    assert_eq!((code(&got[1]), &got[1]["id"]), (-32600, &Value::Null));
    let by_id = |id: i64| got.iter().find(|v| v["id"] == json!(id)).map(code);
    assert_eq!(by_id(1), Some(-32601));
    assert_eq!(by_id(3), Some(-32600));
}

#[tokio::test]
async fn connection_answers_a_fatal_header_then_closes() {
    let mut raw = b"Content-Length: lots\r\n\r\n".to_vec();
    raw.extend(frame_bytes(br#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#));
    let got = answers_to(raw, 1000).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(code(&got[0]), -32600);
    assert_eq!(got[0]["id"], Value::Null);
}

#[tokio::test]
async fn eof_mid_frame_closes_cleanly() {
    let got = answers_to(b"Content-Length: 50\r\n\r\n{\"jsonrpc\"".to_vec(), 1000).await;
    assert!(got.is_empty());
}
