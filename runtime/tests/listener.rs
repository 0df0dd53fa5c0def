//! The network listener against the attacks that found it open (issue #9, findings 2, 4, 7, 8):
//! each test sends exactly what the attacker sent, over a real socket to the real binary.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use support::{listen, listen_with_env, spawn_with_env, WAIT};

mod support;

/// One raw HTTP/1.1 request; returns the status code and the body.
async fn http(addr: &str, method: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} / HTTP/1.1\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(WAIT, tcp.read_to_string(&mut out)).await.expect("answered").unwrap();
    let status = out.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn websocket(addr: &str, headers: &[(&'static str, &str)]) -> Result<Ws, u16> {
    let mut req = format!("ws://{addr}").into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("WebSocket failed without an HTTP answer: {e}"),
    }
}

/// Sends one text message and waits for the next answer (or `None` when the server closes).
async fn ask(ws: &mut Ws, text: &str) -> Option<Value> {
    ws.send(Message::text(text)).await.unwrap();
    next_json(ws).await
}

async fn next_json(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("an answer in time") {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

fn request(id: Value, method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

fn initialize(id: i64) -> String {
    request(json!(id), "initialize", json!({"protocolVersion": 1, "clientInfo": {"name": "probe"}}))
}

fn act(id: Value) -> String {
    request(id, "agent/act", json!({"subtask": "open the box", "observation": {"text": "a box"}}))
}

fn code(answer: &Value) -> i64 {
    answer["error"]["code"].as_i64().unwrap_or_else(|| panic!("expected an error, got {answer}"))
}

#[tokio::test]
async fn beyond_loopback_the_listener_will_not_start_without_a_token() {
    let child = spawn_with_env(&["serve", "--listen", "0.0.0.0:0", "--policy", "rules"], &[]);
    let out = tokio::time::timeout(WAIT, child.wait_with_output()).await.expect("exits").unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("without a token") && stderr.contains("STEPWIRE_TOKEN"), "{stderr}");

    let (_child, addr) =
        listen_with_env(&["--listen", "0.0.0.0:0"], &[("STEPWIRE_TOKEN", "s3cret")]).await.into_any_port();
    let (status, _) = http(&addr, "POST", &[], &act(json!(1))).await;
    assert_eq!(status, 401);
}

trait AnyPort {
    fn into_any_port(self) -> Self;
}
impl AnyPort for (tokio::process::Child, String) {
    /// `0.0.0.0:port` is where it listens; connect over loopback.
    fn into_any_port(self) -> Self {
        let port = self.1.rsplit(':').next().unwrap().to_string();
        (self.0, format!("127.0.0.1:{port}"))
    }
}

#[tokio::test]
async fn the_token_is_read_from_a_file_never_from_argv() {
    let child = spawn_with_env(&["serve", "--listen", "127.0.0.1:0", "--token", "s3cret", "--policy", "rules"], &[]);
    let out = tokio::time::timeout(WAIT, child.wait_with_output()).await.expect("exits").unwrap();
    assert!(!out.status.success(), "--token on the command line shows in ps; it must not exist");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "s3cret\n").unwrap();
    let (_child, addr) = listen(&["--token-file", file.to_str().unwrap()]).await;
    assert_eq!(http(&addr, "POST", &[], &act(json!(1))).await.0, 401);
    assert_eq!(http(&addr, "POST", &[("Authorization", "Bearer s3cre")], &act(json!(1))).await.0, 401);
    let (status, body) = http(&addr, "POST", &[("Authorization", "Bearer s3cret")], &act(json!(1))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(websocket(&addr, &[]).await.err(), Some(401));
    assert!(websocket(&addr, &[("authorization", "Bearer s3cret")]).await.is_ok());
}

#[tokio::test]
async fn web_pages_and_rebound_host_names_are_refused() {
    let (_child, addr) = listen(&["--allow-origin", "http://localhost:3000"]).await;
    // A page on another site: its browser sends its Origin, on a POST and on a WebSocket.
    let evil = [("Origin", "https://evil.example")];
    assert_eq!(http(&addr, "POST", &evil, &act(json!(1))).await.0, 403);
    assert_eq!(websocket(&addr, &[("origin", "https://evil.example")]).await.err(), Some(403));
    // DNS rebinding: the attacker's name resolves to 127.0.0.1, so Host carries that name.
    assert_eq!(http(&addr, "POST", &[("Host", "rebind.evil.example:7420")], &act(json!(1))).await.0, 403);
    // What is allowed still works.
    let ok = [("Origin", "http://localhost:3000")];
    assert_eq!(http(&addr, "POST", &ok, &act(json!(1))).await.0, 200);
    assert!(websocket(&addr, &[("origin", "http://localhost:3000")]).await.is_ok());
    assert_eq!(http(&addr, "POST", &[("Host", "localhost")], &act(json!(1))).await.0, 200);
}

#[tokio::test]
async fn a_websocket_runs_the_lifecycle_as_stdio_does() {
    let (_child, addr) = listen(&[]).await;
    let mut ws = websocket(&addr, &[]).await.unwrap();
    assert_eq!(code(&ask(&mut ws, &act(json!(1))).await.unwrap()), -32002, "before initialize");
    let init = ask(&mut ws, &initialize(2)).await.unwrap();
    assert_eq!(init["result"]["protocolVersion"], 1);
    assert_eq!(code(&ask(&mut ws, &initialize(3)).await.unwrap()), -32600, "a second initialize");
    let served = ask(&mut ws, &act(json!(4))).await.unwrap();
    assert_eq!(served["result"]["action"], "look", "{served}");
    assert_eq!(ask(&mut ws, &request(json!(5), "shutdown", Value::Null)).await.unwrap()["result"], Value::Null);
    assert_eq!(code(&ask(&mut ws, &act(json!(6))).await.unwrap()), -32003, "after shutdown");
}

#[tokio::test]
async fn every_malformed_message_gets_an_answer_over_websocket() {
    let (_child, addr) = listen(&["--max-message-bytes", "4096"]).await;
    let mut ws = websocket(&addr, &[]).await.unwrap();
    ask(&mut ws, &initialize(1)).await.unwrap();
    for (what, text) in [
        ("float id", act(json!(1.5))),
        ("object id", act(json!({"a": 1}))),
        ("array id", act(json!([1]))),
        ("a batch", format!("[{}]", act(json!(7)))),
        ("not JSON", "{\"jsonrpc\": ".to_string()),
        ("a bare string", "\"hello\"".to_string()),
    ] {
        let answer = ask(&mut ws, &text).await.unwrap_or_else(|| panic!("{what}: no answer"));
        assert!(matches!(code(&answer), -32600 | -32700), "{what}: {answer}");
        assert_eq!(answer["id"], Value::Null, "{what}: {answer}");
    }
    let unknown = ask(&mut ws, &request(json!("x"), "agent/fly", json!({}))).await.unwrap();
    assert_eq!((code(&unknown), &unknown["id"]), (-32601, &json!("x")));
    // Too big: answered, then the connection ends (its frame cannot be skipped).
    let big = act(json!(9)).replace("a box", &"x".repeat(8000));
    let answer = ask(&mut ws, &big).await.expect("an answer before closing");
    assert_eq!(code(&answer), -32600, "{answer}");
    assert!(next_json(&mut ws).await.is_none(), "closed after an oversized message");
}

#[tokio::test]
async fn http_refuses_a_batch_at_once() {
    let (_child, addr) = listen(&[]).await;
    let batch = format!("[{}]", (0..1000).map(|i| act(json!(i))).collect::<Vec<_>>().join(","));
    let started = Instant::now();
    let (status, body) = http(&addr, "POST", &[], &batch).await;
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, code(&answer)), (200, -32600), "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A POST over the size limit: 413 and a JSON-RPC error, not a dropped connection.
    let (_child, small) = listen(&["--max-message-bytes", "1000"]).await;
    let (status, body) = http(&small, "POST", &[], &act(json!(1)).replace("a box", &"x".repeat(2000))).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("--max-message-bytes"), "{body}");
}

#[tokio::test]
async fn idle_websockets_give_their_slots_back() {
    let (_child, addr) = listen(&["--max-connections", "2", "--idle-timeout", "1"]).await;
    let mut idle_a = websocket(&addr, &[]).await.unwrap();
    let _idle_b = websocket(&addr, &[]).await.unwrap();
    assert_eq!(websocket(&addr, &[]).await.err(), Some(503), "full while both are held");
    // Nothing sent for the idle timeout: the server closes them and the slots come back.
    assert!(next_json(&mut idle_a).await.is_none());
    let deadline = Instant::now() + WAIT;
    loop {
        match websocket(&addr, &[]).await {
            Ok(mut ws) => {
                assert_eq!(ask(&mut ws, &initialize(1)).await.unwrap()["result"]["protocolVersion"], 1);
                break;
            }
            Err(503) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(status) => panic!("still refused: {status}"),
        }
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let (_child, addr) = listen(&["--header-timeout", "1"]).await;
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await.unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    // The server closes the connection (with or without a 408) instead of waiting forever.
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut out)).await.expect("closed in time").ok();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}
