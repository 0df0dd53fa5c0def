//! The shared executable specification (`tests/sdk-cases/cases.json`), run against the Rust SDK:
//! the conformance bridge `counter-bridge` as a real process over real pipes. The Python SDK runs
//! the same file (`bridges/python/tests/test_sdk_cases.py`); a case may not be skipped on either side.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use serde_json::{json, Value};

const ANY: &str = "<any>";
const WAIT: Duration = Duration::from_secs(10);

fn cases() -> Vec<Value> {
    let path = stepwire_tests::workspace().join("tests/sdk-cases/cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).expect("cases.json is JSON");
    doc["cases"].as_array().expect("a `cases` array").clone()
}

fn matches(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::String(s), _) if s == ANY => true,
        (Value::Object(w), Value::Object(h)) => w.iter().all(|(k, v)| h.get(k).is_some_and(|hv| matches(v, hv))),
        (Value::Array(w), Value::Array(h)) => w.len() == h.len() && w.iter().zip(h).all(|(a, b)| matches(a, b)),
        (Value::Number(w), Value::Number(h)) => w.as_f64() == h.as_f64(),
        _ => want == have,
    }
}

fn frame(message: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(message).expect("JSON");
    [format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes(), body].concat()
}

/// Every frame the bridge writes, parsed; `None` at the end of its output.
fn read_frames(stdout: impl Read + Send + 'static) -> Receiver<Option<Value>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        loop {
            let mut length = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    let _ = tx.send(None);
                    return;
                }
                let line = line.trim();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.trim().eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse::<usize>().ok();
                    }
                }
            }
            let mut body = vec![0; length.expect("the bridge framed its answer")];
            reader.read_exact(&mut body).expect("a whole body");
            let _ = tx.send(Some(serde_json::from_slice(&body).expect("the bridge answers JSON")));
        }
    });
    rx
}

struct Bridge {
    child: Child,
    stdin: Option<ChildStdin>,
    frames: Receiver<Option<Value>>,
}

impl Bridge {
    fn start() -> Bridge {
        let mut child = Command::new(stepwire_tests::binary("stepwire-example-bridge", "counter-bridge"))
            .env("STEPWIRE_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("counter-bridge starts");
        let stdin = child.stdin.take();
        let frames = read_frames(child.stdout.take().expect("piped"));
        Bridge { child, stdin, frames }
    }

    fn write(&mut self, bytes: &[u8]) {
        // A fatal case: the bridge may be gone already.
        if let Some(stdin) = &mut self.stdin {
            let _ = stdin.write_all(bytes).and_then(|()| stdin.flush());
        }
    }

    /// The next response, the bridge's notifications skipped; `None` at the end of its output.
    fn next_answer(&self) -> Option<Value> {
        loop {
            let message = self.frames.recv_timeout(WAIT).expect("an answer or the end of output within 10 s")?;
            if message.get("method").is_none() {
                return Some(message);
            }
        }
    }

    fn exit_code(&mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the bridge did not exit within 10 s of its input closing");
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn initialize_steps() -> Vec<Value> {
    vec![
        json!({"send": {"jsonrpc": "2.0", "id": "init", "method": "initialize",
                        "params": {"protocolVersion": 1, "clientInfo": {"name": "sdk-cases"}}}}),
        json!({"expect": {"id": "init", "result": ANY}}),
        json!({"send": {"jsonrpc": "2.0", "method": "initialized", "params": {}}}),
    ]
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

/// Runs one case; `Err` says which step went wrong.
fn run(case: &Value) -> Result<(), String> {
    let mut bridge = Bridge::start();
    let mut steps = if case["initialize"] == false { vec![] } else { initialize_steps() };
    steps.extend(case["steps"].as_array().expect("steps").iter().cloned());
    for (i, step) in steps.iter().enumerate() {
        if let Some(message) = step.get("send") {
            bridge.write(&frame(message));
        } else if let Some(text) = step.get("sendRaw").and_then(Value::as_str) {
            bridge.write(text.as_bytes());
        } else if let Some(h) = step.get("sendHex").and_then(Value::as_str) {
            bridge.write(&hex(h));
        } else {
            let want = &step["expect"];
            match bridge.next_answer() {
                Some(have) if matches(want, &have) => {}
                Some(have) => return Err(format!("step {i}: expected {want}, got {have}")),
                None => return Err(format!("step {i}: the bridge closed its output; expected {want}")),
            }
        }
    }
    bridge.stdin = None;
    if let Some(extra) = bridge.next_answer() {
        return Err(format!("an answer nobody expected: {extra}"));
    }
    let code = bridge.exit_code();
    let want = case["exit"].as_i64().map(|c| c as i32);
    if code != want {
        return Err(format!("exit code {code:?}, expected {want:?}"));
    }
    Ok(())
}

#[test]
fn the_rust_sdk_passes_every_shared_case() {
    let cases = cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| run(case).err().map(|e| format!("{}: {e}", case["name"].as_str().unwrap_or("?"))))
        .collect();
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
