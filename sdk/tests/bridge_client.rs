//! `BridgeClient` against the real `lockbox-bridge` binary, spawned as a process.

use std::time::Duration;

use stepwire_sdk::client::{BridgeClient, BridgeCommand, BridgeOptions};
use stepwire_sdk::environment::{EnvError, Environment};
use stepwire_sdk::protocol::ResetParams;
use stepwire_tests::lockbox_bridge;

fn options() -> BridgeOptions {
    BridgeOptions {
        call_timeout: Duration::from_secs(10),
        initialize_timeout: Duration::from_secs(10),
        shutdown_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

/// Live (non-zombie) processes whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the `(comm)`: state ppid pgrp ...
        let rest: Vec<&str> = stat.rsplit_once(')').map(|r| r.1).unwrap_or("").split_whitespace().collect();
        if rest.len() > 2 && rest[0] != "Z" && rest[2] == pgid.to_string() {
            out.push(pid);
        }
    }
    out
}

async fn gone(pgid: u32) -> bool {
    for _ in 0..100 {
        if group_members(pgid).is_empty() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn reset(task: &str, variation: u64) -> ResetParams {
    ResetParams { task: task.into(), variation: Some(variation), ..Default::default() }
}

#[tokio::test]
async fn plays_to_a_win_with_the_expert_then_shuts_down() {
    let cmd = BridgeCommand::new(lockbox_bridge()).env("STEPWIRE_LOG", "debug");
    let mut env = BridgeClient::spawn(cmd, options()).await.unwrap();
    assert!(env.capabilities().expert_action);
    assert_eq!(env.tasks().await.unwrap().len(), 2);
    for (task, variation) in [("open-box", 7), ("find-key", 13)] {
        let start = env.reset(reset(task, variation)).await.unwrap();
        assert!(start.observation.parts.contains_key("inventory"));
        let mut won = false;
        for _ in 0..20 {
            let advice = env.expert_action().await.unwrap();
            let action = advice.action.expect("the expert has a move");
            assert!(advice.subtask.is_some_and(|s| action.ends_with(s.trim_start_matches("get the ").trim_start_matches("open the "))), "{action}");
            assert!(env.admissible_actions().await.unwrap().contains(&action), "{action}");
            let step = env.step(&action).await.unwrap();
            if step.done {
                won = step.won;
                break;
            }
        }
        assert!(won, "the expert should win {task} {variation}");
        assert_eq!(env.step("look").await.unwrap_err(), EnvError::EpisodeOver);
    }
    assert!(matches!(env.step("fly away").await, Err(EnvError::EpisodeOver)));
    env.reset(reset("open-box", 0)).await.unwrap();
    assert!(matches!(env.step("fly away").await, Err(EnvError::InvalidAction(_))));
    assert!(matches!(env.reset(reset("nope", 0)).await, Err(EnvError::UnknownTask(_))));
    let pid = env.pid().unwrap();
    let status = env.shutdown().await.unwrap();
    assert!(status.success(), "{status}");
    assert!(gone(pid).await);
}

#[tokio::test]
async fn a_killed_bridge_reports_crashed_and_leaves_no_process() {
    // A shell that leaves a grandchild behind, then becomes the bridge.
    let bridge = lockbox_bridge();
    let cmd = BridgeCommand::new("sh")
        .args(["-c", "echo starting >&2; sleep 300 & exec \"$0\""])
        .arg(&bridge)
        .name("lockbox");
    let mut env = BridgeClient::spawn(cmd, options()).await.unwrap();
    let pgid = env.pid().unwrap();
    env.reset(reset("open-box", 3)).await.unwrap();
    assert_eq!(group_members(pgid).len(), 2, "bridge and its grandchild");

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pgid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), env.step("look")).await.unwrap().unwrap_err();
    let EnvError::Crashed(msg) = err else { panic!("expected Crashed, got {err:?}") };
    assert!(msg.contains("signal: 9"), "{msg}");
    assert!(msg.contains("starting"), "the last stderr lines are in the report: {msg}");
    // Later calls fail the same way, at once.
    assert!(matches!(env.tasks().await, Err(EnvError::Crashed(_))));
    drop(env);
    assert!(gone(pgid).await, "grandchild survived: {:?}", group_members(pgid));
}

/// Live processes whose command line is exactly `argv`.
fn processes_running(argv: &[&str]) -> Vec<u32> {
    let wanted: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted))
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .collect()
}

#[tokio::test]
async fn children_that_leave_the_process_group_are_killed_too() {
    // One child in a new session (setsid), one daemonised by a double fork: neither is in the
    // bridge's group, so killing the group alone leaves both running.
    let bridge = lockbox_bridge();
    let script = "setsid sleep 3171 & (setsid sh -c 'sleep 3172 & exit' &); exec \"$0\"";
    let cmd = BridgeCommand::new("sh").args(["-c", script]).arg(&bridge).name("lockbox");
    let env = BridgeClient::spawn(cmd, options()).await.unwrap();
    let mut escaped = Vec::new();
    for _ in 0..100 {
        escaped = [processes_running(&["sleep", "3171"]), processes_running(&["sleep", "3172"])].concat();
        if escaped.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(escaped.len(), 2, "both escapees started");
    env.shutdown().await.unwrap();
    for _ in 0..100 {
        if processes_running(&["sleep", "3171"]).is_empty() && processes_running(&["sleep", "3172"]).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("escaped children survived: {escaped:?}");
}

#[tokio::test]
async fn a_bridge_writing_stderr_without_newlines_costs_bounded_memory() {
    // 64 MiB of stderr without a newline, then the bridge: its stderr is forwarded in pieces
    // and the bridge still serves.
    let bridge = lockbox_bridge();
    let script = "head -c 67108864 /dev/zero | tr '\\0' x >&2; exec \"$0\"";
    let cmd = BridgeCommand::new("sh").args(["-c", script]).arg(&bridge).name("lockbox");
    let before = rss_kib();
    let mut env = BridgeClient::spawn(cmd, BridgeOptions { initialize_timeout: Duration::from_secs(60), ..options() })
        .await
        .unwrap();
    env.reset(reset("open-box", 1)).await.unwrap();
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 32 * 1024, "RSS grew by {grown} KiB reading 64 MiB of stderr");
    env.shutdown().await.unwrap();
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_hung_bridge_times_out_and_is_killed() {
    let cmd = BridgeCommand::new("sleep").arg("300");
    let opts = BridgeOptions { initialize_timeout: Duration::from_millis(300), ..options() };
    let started = std::time::Instant::now();
    let err = BridgeClient::spawn(cmd, opts).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(&err, EnvError::Crashed(m) if m.contains("did not answer")), "{err:?}");
}

#[tokio::test]
async fn a_missing_program_is_an_error() {
    let err = BridgeClient::spawn(BridgeCommand::new("/no/such/bridge"), options()).await.unwrap_err();
    assert!(matches!(err, EnvError::Crashed(m) if m.contains("cannot start")));
}

#[tokio::test]
async fn a_bridge_that_breaks_the_protocol_is_declared_crashed_at_once() {
    // Not JSON where `initialize`'s answer should be: crashed now, not after the 60 s timeout.
    let cmd = BridgeCommand::new("sh").args(["-c", "printf 'Content-Length: 5\\r\\n\\r\\nhello'; sleep 300"]);
    let opts = BridgeOptions { initialize_timeout: Duration::from_secs(60), ..options() };
    let started = std::time::Instant::now();
    let err = BridgeClient::spawn(cmd, opts).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(matches!(&err, EnvError::Crashed(m) if m.contains("broke the protocol")), "{err:?}");
}
