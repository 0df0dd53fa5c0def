//! The bridge wrapper (`chaos wrap-bridge PROGRAM [ARGS]`): a bridge that is really PROGRAM, with
//! two faults of its own. It relays Content-Length frames both ways unchanged, delays each
//! `env/step` by `STEPWIRE_CHAOS_STEP_DELAY_MS` (so a run lasts long enough to be interrupted),
//! and on SIGUSR1 writes a frame that is not JSON to its stdout: a bridge whose output is
//! corrupted. It exits when either side ends.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Mutex;

/// The environment variable with the per-step delay, in milliseconds.
pub const STEP_DELAY_VAR: &str = "STEPWIRE_CHAOS_STEP_DELAY_MS";

/// What the wrapper writes on SIGUSR1: a whole frame whose body is not JSON.
pub const GARBAGE: &[u8] = b"Content-Length: 5\r\n\r\nhello";

/// One frame: the header block as read, and the body.
struct Frame {
    header: Vec<u8>,
    body: Vec<u8>,
}

/// The next frame, or `None` at end of input (or input that is not framed).
async fn read_frame(reader: &mut (impl AsyncBufRead + Unpin)) -> Option<Frame> {
    let mut header = Vec::new();
    let mut length = None;
    loop {
        let start = header.len();
        if reader.read_until(b'\n', &mut header).await.ok()? == 0 {
            return None;
        }
        let line = String::from_utf8_lossy(&header[start..]).trim().to_string();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).await.ok()?;
    Some(Frame { header, body })
}

async fn write_frame(out: &mut (impl AsyncWrite + Unpin), frame: &Frame) -> std::io::Result<()> {
    out.write_all(&frame.header).await?;
    out.write_all(&frame.body).await?;
    out.flush().await
}

/// Runs the wrapper around `program args`; returns the exit status when either side ends. The
/// caller must exit at once: a runtime shut down normally would wait for the blocking read of
/// stdin, which only ends when the runner closes it.
pub async fn wrap(program: &str, args: &[String]) -> i32 {
    // The handler first: before it exists, SIGUSR1 would kill the wrapper instead.
    let Ok(mut usr1) = signal(SignalKind::user_defined1()) else { return 70 };
    let delay = std::env::var(STEP_DELAY_VAR).ok().and_then(|v| v.parse().ok()).map(Duration::from_millis);
    let mut child = match Command::new(program).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wrap-bridge: cannot start {program}: {e}");
            return 70;
        }
    };
    let (Some(mut to_child), Some(from_child)) = (child.stdin.take(), child.stdout.take()) else {
        return 70;
    };
    let out = Arc::new(Mutex::new(tokio::io::stdout()));

    // Up: our stdin to the child, env/step held back by the delay.
    let up = async move {
        let mut input = BufReader::new(tokio::io::stdin());
        while let Some(frame) = read_frame(&mut input).await {
            if let Some(d) = delay.filter(|_| contains(&frame.body, b"\"env/step\"")) {
                tokio::time::sleep(d).await;
            }
            if write_frame(&mut to_child, &frame).await.is_err() {
                break;
            }
        }
        // Our input ended: so does the child's, and it exits.
    };
    // Down: the child's answers to our stdout, a whole frame at a time.
    let down = {
        let out = out.clone();
        async move {
            let mut from_child = BufReader::new(from_child);
            while let Some(frame) = read_frame(&mut from_child).await {
                if write_frame(&mut *out.lock().await, &frame).await.is_err() {
                    break;
                }
            }
        }
    };
    let corrupt = async move {
        while usr1.recv().await.is_some() {
            let mut out = out.lock().await;
            let _ = out.write_all(GARBAGE).await;
            let _ = out.flush().await;
        }
    };
    tokio::select! {
        _ = up => {
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        }
        _ = down => {}
        _ = corrupt => {}
    }
    let _ = child.start_kill();
    0
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Reads frames until the end; for tests of the relay.
#[cfg(test)]
async fn frames(mut input: impl tokio::io::AsyncRead + Unpin) -> Vec<Vec<u8>> {
    let mut reader = BufReader::new(&mut input);
    let mut out = Vec::new();
    while let Some(f) = read_frame(&mut reader).await {
        out.push(f.body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_read_whole_whatever_the_header_case() {
        let input: &[u8] = b"Content-Length: 2\r\n\r\n{}content-length:4\r\nContent-Type: x\r\n\r\nnull";
        assert_eq!(frames(input).await, vec![b"{}".to_vec(), b"null".to_vec()]);
        let garbage = frames(GARBAGE).await;
        assert_eq!(garbage, vec![b"hello".to_vec()]);
        assert!(frames(&b"Content-Length: 9\r\n\r\nshort"[..]).await.is_empty(), "a cut frame is the end");
    }
}
