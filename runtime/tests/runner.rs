//! `stepwire run` end to end: the real `stepwire` binary against the real `lockbox-bridge`
//! (build it first: `cargo build -p stepwire-example-bridge`), with a small Python proxy in
//! front of it when a test needs a bridge that crashes, hangs or is slow.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const STEPWIRE: &str = env!("CARGO_BIN_EXE_stepwire");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The lockbox bridge (built on demand when missing).
fn lockbox() -> PathBuf {
    stepwire_tests::lockbox_bridge()
}

fn stepwire(dir: &Path, args: &[&str]) -> Output {
    Command::new(STEPWIRE)
        .args(["run", "--json", "--quiet"])
        .args(args)
        .current_dir(dir)
        .env("STEPWIRE_LOG", "warn")
        .output()
        .expect("running stepwire")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); status {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "stepwire failed: {:?}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "recording does not end with a newline");
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}"))).collect()
}

fn episode_id(line: &Value) -> String {
    let k = &line["episode"];
    format!(
        "{}/{}/{}/{}#{}",
        k["env"].as_str().unwrap(),
        k["task"].as_str().unwrap(),
        k["split"].as_str().unwrap(),
        k["variation"],
        k["repeat"]
    )
}

fn summaries(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l["kind"] == "episode").collect()
}

fn validate_all(lines: &[Value]) {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("schemas/record.line.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    for (i, line) in lines.iter().enumerate() {
        let errors: Vec<String> = validator.iter_errors(line).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "line {i} does not validate: {errors:?}\n{line}");
    }
}

/// Every episode's lines form one contiguous block ending with its summary.
fn assert_whole_episodes(lines: &[Value]) {
    let mut current: Option<String> = None;
    for l in lines {
        let id = episode_id(l);
        if let Some(c) = &current {
            assert_eq!(c, &id, "an episode's lines are interleaved with another's");
        }
        current = if l["kind"] == "episode" { None } else { Some(id) };
    }
    assert!(current.is_none(), "the recording ends inside an episode");
}

/// (outcome, score, steps) per episode id.
fn results(summary: &Value) -> BTreeMap<String, (String, f64, u64)> {
    summary["episodeResults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                (
                    r["outcome"].as_str().unwrap().to_string(),
                    r["score"].as_f64().unwrap(),
                    r["steps"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

#[test]
fn expert_wins_every_episode_and_records_valid_lines() {
    lockbox();
    let dir = tempfile::tempdir().unwrap();
    let out = stepwire(dir.path(), &["--env", "lockbox", "--per-task", "5", "--record", "rec.jsonl"]);
    assert_ok(&out);
    let s = json_of(&out);
    assert_eq!(s["env"], "lockbox");
    assert_eq!(s["policy"], "expert");
    assert_eq!(s["split"], "train");
    assert_eq!(s["planned"], 10);
    assert_eq!(s["episodes"], 10);
    assert_eq!(s["won"], 10);
    assert_eq!(s["failed"], 0);
    assert_eq!(s["notRun"], 0);
    assert_eq!(s["successRate"], 1.0);
    assert_eq!(s["interrupted"], false);
    assert!(s["meanSteps"].as_f64().unwrap() >= 1.0);
    assert!(s["envMsPerStep"].as_f64().unwrap() > 0.0);
    let tasks: Vec<&str> = s["tasks"].as_array().unwrap().iter().map(|t| t["task"].as_str().unwrap()).collect();
    assert_eq!(tasks, ["open-box", "find-key"]);
    for t in s["tasks"].as_array().unwrap() {
        assert_eq!(t["episodes"], 5);
        assert_eq!(t["successRate"], 1.0);
    }

    let rec = lines(&dir.path().join("rec.jsonl"));
    validate_all(&rec);
    assert_whole_episodes(&rec);
    let eps = summaries(&rec);
    assert_eq!(eps.len(), 10);
    let ids: HashSet<String> = eps.iter().map(|l| episode_id(l)).collect();
    assert_eq!(ids.len(), 10);
    let planned: HashSet<String> = results(&s).into_keys().collect();
    assert_eq!(ids, planned);
    for e in &eps {
        assert_eq!(e["outcome"], "won");
    }
    // Every step has its low-level transition.
    let steps: u64 = eps.iter().map(|e| e["steps"].as_u64().unwrap()).sum();
    let lows = rec.iter().filter(|l| l["level"] == "low").count() as u64;
    assert_eq!(steps, lows);

    // --min-success: met → 0, missed → 2 (with truncation forcing losses).
    let out = stepwire(dir.path(), &["--env", "lockbox", "--per-task", "2", "--no-record", "--min-success", "1"]);
    assert_ok(&out);
    let out = stepwire(
        dir.path(),
        &["--env", "lockbox", "--per-task", "4", "--no-record", "--max-steps", "1", "--min-success", "0.9"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let s = json_of(&out);
    assert!(s["truncated"].as_u64().unwrap() > 0);
}

#[test]
fn a_command_line_env_and_bad_arguments() {
    let bridge = lockbox();
    let dir = tempfile::tempdir().unwrap();
    let env = format!("'{}'", bridge.display());
    let out = stepwire(
        dir.path(),
        &["--env", &env, "--tasks", "find-key", "--variations", "3,1", "--repeat", "2", "--no-record"],
    );
    assert_ok(&out);
    let ids: Vec<String> = results(&json_of(&out)).into_keys().collect();
    assert_eq!(
        ids,
        [
            "lockbox/find-key/train/1#0",
            "lockbox/find-key/train/1#1",
            "lockbox/find-key/train/3#0",
            "lockbox/find-key/train/3#1"
        ]
    );

    // Sampling is seeded.
    let a = stepwire(dir.path(), &["--env", "lockbox", "--episodes", "7", "--seed", "5", "--no-record"]);
    let b = stepwire(dir.path(), &["--env", "lockbox", "--episodes", "7", "--seed", "5", "--no-record"]);
    assert_eq!(results(&json_of(&a)).keys().collect::<Vec<_>>(), results(&json_of(&b)).keys().collect::<Vec<_>>());
    assert_eq!(json_of(&a)["episodes"], 7);

    for (args, needle) in [
        (&["--env", "no-such-env"][..], "python-example"),
        (&["--env", "lockbox", "--tasks", "nope"][..], "open-box"),
        (&["--env", "lockbox", "--split", "nope"][..], "train"),
        (&["--env", "/bin/false"][..], "did not start"),
    ] {
        let out = stepwire(dir.path(), &[args, &["--no-record"]].concat());
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn two_jobs_give_the_same_episodes_as_one() {
    lockbox();
    let dir = tempfile::tempdir().unwrap();
    let one = stepwire(
        dir.path(),
        &["--env", "lockbox", "--episodes", "16", "--seed", "9", "--repeat", "2", "--record", "one.jsonl"],
    );
    let two = stepwire(
        dir.path(),
        &[
            "--env",
            "lockbox",
            "--episodes",
            "16",
            "--seed",
            "9",
            "--repeat",
            "2",
            "--jobs",
            "2",
            "--record",
            "two.jsonl",
        ],
    );
    assert_ok(&one);
    assert_ok(&two);
    let (s1, s2) = (json_of(&one), json_of(&two));
    assert_eq!(s1["episodes"], 32);
    assert_eq!(results(&s1), results(&s2));
    assert_eq!(s1["episodeResults"], s2["episodeResults"], "plan order is kept whatever the completion order");

    // The transitions of each episode are identical too.
    let by_episode = |file: &str| {
        let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for l in lines(&dir.path().join(file)) {
            if l["kind"] == "transition" {
                m.entry(episode_id(&l)).or_default().push(l);
            }
        }
        m
    };
    let two_lines = lines(&dir.path().join("two.jsonl"));
    assert_whole_episodes(&two_lines);
    assert_eq!(summaries(&two_lines).len(), 32);
    assert_eq!(by_episode("one.jsonl"), by_episode("two.jsonl"));
}

#[test]
fn resume_runs_only_the_missing_episodes_and_cuts_a_torn_tail() {
    lockbox();
    let dir = tempfile::tempdir().unwrap();
    let full = stepwire(dir.path(), &["--env", "lockbox", "--per-task", "3", "--record", "full.jsonl"]);
    assert_ok(&full);
    let text = std::fs::read_to_string(dir.path().join("full.jsonl")).unwrap();
    let all: Vec<&str> = text.lines().collect();
    let third_summary =
        all.iter().enumerate().filter(|(_, l)| l.contains("\"kind\":\"episode\"")).nth(2).map(|(i, _)| i).unwrap();
    // Three whole episodes, two lines of the fourth, and half of its next line.
    let mut partial = all[..=third_summary + 2].join("\n");
    partial.push('\n');
    let torn = all[third_summary + 3];
    partial.push_str(&torn[..torn.len() / 2]);
    std::fs::write(dir.path().join("part.jsonl"), &partial).unwrap();
    let first_three: Vec<String> = summaries(&lines_of(&all[..=third_summary])).iter().map(|l| episode_id(l)).collect();

    // Without --resume an existing recording is refused.
    let out = stepwire(dir.path(), &["--env", "lockbox", "--per-task", "3", "--record", "part.jsonl"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));

    let out = stepwire(dir.path(), &["--env", "lockbox", "--per-task", "3", "--record", "part.jsonl", "--resume"]);
    assert_ok(&out);
    let s = json_of(&out);
    assert_eq!(s["planned"], 6);
    assert_eq!(s["episodes"], 6);
    assert_eq!(s["resumed"], 3);
    assert_eq!(s["won"], 6);
    let resumed: Vec<String> = s["episodeResults"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["resumed"] == true)
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(resumed, first_three);

    let rec = lines(&dir.path().join("part.jsonl"));
    validate_all(&rec);
    assert_whole_episodes(&rec);
    let ids: Vec<String> = summaries(&rec).iter().map(|l| episode_id(l)).collect();
    assert_eq!(ids.len(), 6);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 6, "each episode recorded once");
    assert_eq!(&ids[..3], &first_three[..]);
    // The same content as the uninterrupted run, timings aside.
    let untimed = |mut v: Vec<Value>| {
        for l in &mut v {
            if let Some(o) = l.as_object_mut() {
                o.remove("envSeconds");
                o.remove("agentSeconds");
            }
        }
        v
    };
    assert_eq!(untimed(rec.clone()), untimed(lines(&dir.path().join("full.jsonl"))));

    // Resuming a complete file plays nothing.
    let out = stepwire(dir.path(), &["--env", "lockbox", "--per-task", "3", "--record", "part.jsonl", "--resume"]);
    assert_ok(&out);
    assert_eq!(json_of(&out)["resumed"], 6);
    assert_eq!(lines(&dir.path().join("part.jsonl")).len(), rec.len());
}

/// The head of /etc/services: a text file someone might point --record at by mistake.
const SERVICES: &str = "# Network services, Internet style\n#\n# Updated from https://www.iana.org/assignments/service-names-port-numbers\n\ntcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer\necho\t\t7/tcp\n";

#[test]
fn resume_refuses_a_file_that_is_not_a_recording_and_leaves_it_unchanged() {
    lockbox();
    let dir = tempfile::tempdir().unwrap();
    let full = stepwire(dir.path(), &["--env", "lockbox", "--per-task", "1", "--record", "full.jsonl"]);
    assert_ok(&full);
    let recording = std::fs::read_to_string(dir.path().join("full.jsonl")).unwrap();
    let mut edited: Vec<&str> = recording.lines().collect();
    edited.insert(2, "a line someone typed");
    let edited = edited.join("\n") + "\n";
    let services = std::fs::read("/etc/services").unwrap_or_else(|_| SERVICES.into());

    for (name, bytes, line) in [
        ("services", services, "line 1"),
        ("services-head", SERVICES.as_bytes().to_vec(), "line 1"),
        ("hello.txt", b"hello".to_vec(), "line 1"),
        ("notes.jsonl", b"\n{\"kind\":\"note\"}\n".to_vec(), "line 2"),
        ("edited.jsonl", edited.into_bytes(), "line 3"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let out = stepwire(dir.path(), &["--env", "lockbox", "--per-task", "1", "--record", name, "--resume"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(&format!("{name} is not a stepwire recording")), "{name}: {stderr}");
        assert!(stderr.contains(line) && stderr.contains("left unchanged"), "{name}: {stderr}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} was modified");
    }
}

#[test]
fn resume_after_a_torn_last_line_keeps_every_byte_before_it() {
    lockbox();
    let dir = tempfile::tempdir().unwrap();
    let full = stepwire(dir.path(), &["--env", "lockbox", "--per-task", "2", "--record", "full.jsonl"]);
    assert_ok(&full);
    let text = std::fs::read_to_string(dir.path().join("full.jsonl")).unwrap();
    let first_summary = text.find("\"kind\":\"episode\"").unwrap();
    let whole = &text[..first_summary + text[first_summary..].find('\n').unwrap() + 1];
    // One whole episode, then a crash a few bytes into the next line.
    std::fs::write(dir.path().join("part.jsonl"), format!("{whole}{}", &text[whole.len()..whole.len() + 7])).unwrap();

    let out = stepwire(dir.path(), &["--env", "lockbox", "--per-task", "2", "--record", "part.jsonl", "--resume"]);
    assert_ok(&out);
    assert_eq!(json_of(&out)["resumed"], 1);
    let after = std::fs::read_to_string(dir.path().join("part.jsonl")).unwrap();
    assert!(after.starts_with(whole), "the whole episode was rewritten");
    let rec = lines(&dir.path().join("part.jsonl"));
    validate_all(&rec);
    assert_whole_episodes(&rec);
    assert_eq!(summaries(&rec).len(), summaries(&lines(&dir.path().join("full.jsonl"))).len());
}

fn lines_of(raw: &[&str]) -> Vec<Value> {
    raw.iter().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A Python proxy in front of lockbox-bridge. `mode`: `crash` (exit at the 2nd env/step, first
/// instance only), `hang` (stop answering at the 2nd env/step, first instance only), `slow`
/// (delay every env/step by 100 ms). The temp dir's unique name is in every process's command
/// line, so `pgrep -f` finds strays.
struct Proxy {
    dir: tempfile::TempDir,
    marker: String,
}

const PROXY: &str = r#"
import json, os, subprocess, sys, threading, time
flag, target, mode = sys.argv[1], sys.argv[2], sys.argv[3]
first = not os.path.exists(flag)
if first:
    open(flag, "w").close()
child = subprocess.Popen([target], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

def read_frame(stream):
    header = b""
    while not header.endswith(b"\r\n\r\n"):
        c = stream.read(1)
        if not c:
            return None, None
        header += c
    length = int([l for l in header.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
    return header, stream.read(length)

def pump():
    out = sys.stdout.buffer
    while True:
        header, body = read_frame(child.stdout)
        if header is None:
            break
        if mode == "huge" and b'"observation"' in body:
            # An environment that prints megabytes a step.
            msg = json.loads(body)
            msg["result"]["observation"]["text"] += " " + "x" * 3_500_000
            body = json.dumps(msg).encode()
            header = b"Content-Length: %d\r\n\r\n" % len(body)
        out.write(header + body)
        out.flush()
    os._exit(0)

threading.Thread(target=pump, daemon=True).start()
inp = sys.stdin.buffer
steps = 0
while True:
    header = b""
    while not header.endswith(b"\r\n\r\n"):
        c = inp.read(1)
        if not c:
            child.stdin.close()
            child.wait()
            sys.exit(0)
        header += c
    length = int([l for l in header.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
    body = inp.read(length)
    if b'"env/step"' in body:
        steps += 1
        if mode == "slow":
            time.sleep(0.1)
        elif steps == 2 and first and mode == "crash":
            sys.stderr.write("proxy: crashing on purpose\n")
            sys.stderr.flush()
            os._exit(3)
        elif steps == 2 and first and mode == "hang":
            time.sleep(3600)
        elif steps == 2 and first and mode == "garbage":
            sys.stdout.buffer.write(b"Content-Length: 5\r\n\r\nhello")
            sys.stdout.buffer.flush()
            continue
    child.stdin.write(header + body)
    child.stdin.flush()
"#;

impl Proxy {
    fn new() -> Proxy {
        let dir = tempfile::Builder::new().prefix("swproxy").tempdir().unwrap();
        let marker = dir.path().file_name().unwrap().to_string_lossy().into_owned();
        std::fs::write(dir.path().join("proxy.py"), PROXY).unwrap();
        // A link named after the marker, so the lockbox child carries it in its command line too.
        std::os::unix::fs::symlink(lockbox(), dir.path().join("lockbox-bridge")).unwrap();
        Proxy { dir, marker }
    }

    fn env(&self, mode: &str) -> String {
        let d = self.dir.path().display();
        format!("python3 '{d}/proxy.py' '{d}/first-started' '{d}/lockbox-bridge' {mode}")
    }

    fn strays(&self) -> String {
        let out = Command::new("pgrep").args(["-a", "-f", &self.marker]).output().expect("pgrep");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn assert_no_strays(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = self.strays();
            if s.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "stray processes:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn a_crashing_bridge_fails_its_episode_and_the_run_goes_on() {
    let proxy = Proxy::new();
    let dir = tempfile::tempdir().unwrap();
    let env = proxy.env("crash");
    let out = stepwire(dir.path(), &["--env", &env, "--per-task", "3", "--record", "rec.jsonl"]);
    assert_ok(&out);
    let s = json_of(&out);
    assert_eq!(s["episodes"], 6);
    assert_eq!(s["failed"], 1, "{s:#}");
    assert_eq!(s["won"], 5);
    let failed: Vec<&Value> =
        s["episodeResults"].as_array().unwrap().iter().filter(|r| r["outcome"] == "failed").collect();
    assert_eq!(failed[0]["id"], "lockbox/open-box/train/0#0");
    let reason = failed[0]["failure"].as_str().unwrap();
    assert!(reason.contains("gone") || reason.contains("crash"), "{reason}");
    assert_eq!(s["failures"][0]["count"], 1);

    let rec = lines(&dir.path().join("rec.jsonl"));
    validate_all(&rec);
    assert_whole_episodes(&rec);
    let eps = summaries(&rec);
    assert_eq!(eps.len(), 6);

    // --max-failed turns failed episodes into a failing exit status (CI gates on it).
    for (max, code) in [("0", 2), ("1", 0)] {
        let crashes_once = Proxy::new();
        let args = ["--env", &crashes_once.env("crash"), "--per-task", "3", "--no-record", "--max-failed", max];
        let out = stepwire(dir.path(), &args);
        assert_eq!(out.status.code(), Some(code), "--max-failed {max}: {}", String::from_utf8_lossy(&out.stderr));
        crashes_once.assert_no_strays();
    }
    assert_eq!(eps[0]["outcome"], "failed");
    assert!(eps[0]["failure"].as_str().unwrap().contains("proxy: crashing on purpose"), "{}", eps[0]["failure"]);
    proxy.assert_no_strays();
}

#[test]
fn a_hung_bridge_is_killed_and_replaced() {
    let proxy = Proxy::new();
    let dir = tempfile::tempdir().unwrap();
    let env = proxy.env("hang");
    let started = Instant::now();
    let out =
        stepwire(dir.path(), &["--env", &env, "--per-task", "2", "--call-timeout", "1.5", "--record", "rec.jsonl"]);
    assert_ok(&out);
    assert!(started.elapsed() < Duration::from_secs(30));
    let s = json_of(&out);
    assert_eq!(s["episodes"], 4);
    assert_eq!(s["failed"], 1, "{s:#}");
    assert_eq!(s["won"], 3);
    let reason = s["failures"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("did not answer"), "{reason}");
    assert_eq!(summaries(&lines(&dir.path().join("rec.jsonl"))).len(), 4);
    proxy.assert_no_strays();

    // The same through --episode-timeout.
    let proxy = Proxy::new();
    let env = proxy.env("hang");
    let out = stepwire(dir.path(), &["--env", &env, "--per-task", "2", "--episode-timeout", "1.5", "--no-record"]);
    assert_ok(&out);
    let s = json_of(&out);
    assert_eq!(s["failed"], 1, "{s:#}");
    assert!(s["failures"][0]["reason"].as_str().unwrap().contains("episode timeout"));
    proxy.assert_no_strays();
}

#[test]
fn a_bridge_that_breaks_the_protocol_is_replaced_at_once() {
    // Not JSON in place of an answer: the episode fails now, not after --call-timeout (120 s),
    // and a fresh bridge plays the rest.
    let proxy = Proxy::new();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = stepwire(dir.path(), &["--env", &proxy.env("garbage"), "--per-task", "2", "--record", "rec.jsonl"]);
    assert_ok(&out);
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
    let s = json_of(&out);
    assert_eq!((s["episodes"].as_u64(), s["failed"].as_u64(), s["won"].as_u64()), (Some(4), Some(1), Some(3)), "{s:#}");
    let reason = s["failures"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("broke the protocol"), "{reason}");
    proxy.assert_no_strays();
}

#[test]
fn megabyte_observations_are_cut_in_the_recording() {
    let proxy = Proxy::new();
    let dir = tempfile::tempdir().unwrap();
    let out = stepwire(
        dir.path(),
        &["--env", &proxy.env("huge"), "--tasks", "open-box", "--episodes", "1", "--record", "rec.jsonl"],
    );
    assert_ok(&out);
    assert_eq!(json_of(&out)["won"], 1);
    let size = std::fs::metadata(dir.path().join("rec.jsonl")).unwrap().len();
    // Uncut, every state of every transition would hold 3.5 MB: tens of megabytes.
    assert!(size < 2_000_000, "the recording is {size} bytes");
    let rec = lines(&dir.path().join("rec.jsonl"));
    validate_all(&rec);
    assert!(rec.iter().any(|l| l.to_string().contains("bytes cut: --max-observation-bytes")));
    proxy.assert_no_strays();
}

/// Starts a slow run in the background and waits until `n` episodes are recorded.
#[allow(clippy::zombie_processes)] // the caller waits for the returned child
fn start_slow_run(proxy: &Proxy, dir: &Path, n: usize) -> (std::process::Child, usize) {
    let env = proxy.env("slow");
    let child = Command::new(STEPWIRE)
        .args(["run", "--json", "--quiet", "--env", &env, "--per-task", "15", "--jobs", "2", "--record", "rec.jsonl"])
        .current_dir(dir)
        .env("STEPWIRE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = std::fs::read_to_string(dir.join("rec.jsonl"))
            .map(|t| t.lines().filter(|l| l.contains("\"kind\":\"episode\"")).count())
            .unwrap_or(0);
        if seen >= n {
            return (child, seen);
        }
        if Instant::now() > deadline {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run did not record {n} episodes in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_with_deadline(child: std::process::Child, limit: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("stepwire did not exit within {limit:?}");
        }
    }
}

#[test]
fn sigterm_stops_cleanly_and_keeps_every_finished_episode() {
    let proxy = Proxy::new();
    let dir = tempfile::tempdir().unwrap();
    let (child, seen) = start_slow_run(&proxy, dir.path(), 3);
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = wait_with_deadline(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(143), "{}", String::from_utf8_lossy(&out.stderr));
    let s = json_of(&out);
    assert_eq!(s["interrupted"], true);
    assert!(s["notRun"].as_u64().unwrap() > 0);

    let rec = lines(&dir.path().join("rec.jsonl"));
    validate_all(&rec);
    assert_whole_episodes(&rec);
    let eps = summaries(&rec);
    assert!(eps.len() >= seen);
    assert_eq!(s["episodes"].as_u64().unwrap(), eps.len() as u64, "the report covers exactly the recorded episodes");
    assert!(eps.iter().all(|e| e["outcome"] == "won"), "no episode is recorded as failed by the interruption");
    proxy.assert_no_strays();

    // The rest can be resumed.
    let env = proxy.env("slow");
    let out =
        stepwire(dir.path(), &["--env", &env, "--per-task", "15", "--jobs", "2", "--record", "rec.jsonl", "--resume"]);
    assert_ok(&out);
    let s = json_of(&out);
    assert_eq!(s["episodes"], 30);
    assert_eq!(s["resumed"].as_u64().unwrap(), eps.len() as u64);
    assert_eq!(summaries(&lines(&dir.path().join("rec.jsonl"))).len(), 30);
    proxy.assert_no_strays();
}

#[test]
fn sigkill_loses_no_finished_episode() {
    let proxy = Proxy::new();
    let dir = tempfile::tempdir().unwrap();
    let (child, _) = start_slow_run(&proxy, dir.path(), 3);
    // Whatever the file holds at the moment of the kill must survive it.
    let before: Vec<String> = std::fs::read_to_string(dir.path().join("rec.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"kind\":\"episode\""))
        .map(String::from)
        .collect();
    let status = Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let _ = wait_with_deadline(child, Duration::from_secs(10));
    let text = std::fs::read_to_string(dir.path().join("rec.jsonl")).unwrap();
    for line in &before {
        assert!(text.contains(line.as_str()), "a finished episode was lost");
    }
    // The orphaned bridges see their stdin close and exit.
    proxy.assert_no_strays();

    let env = proxy.env("slow");
    let out =
        stepwire(dir.path(), &["--env", &env, "--per-task", "15", "--jobs", "2", "--record", "rec.jsonl", "--resume"]);
    assert_ok(&out);
    let s = json_of(&out);
    assert_eq!(s["episodes"], 30);
    assert!(s["resumed"].as_u64().unwrap() >= before.len() as u64);
    let rec = lines(&dir.path().join("rec.jsonl"));
    validate_all(&rec);
    assert_whole_episodes(&rec);
    let ids: Vec<String> = summaries(&rec).iter().map(|l| episode_id(l)).collect();
    assert_eq!(ids.len(), 30);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 30);
    proxy.assert_no_strays();
}

/// A run whose recording cannot be written must stop with an error: exit 1, an `error:` line
/// that says why, no panic, no bridge left behind.
fn assert_stopped_cleanly(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let error = stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(error.contains(needle), "{error}");
}

/// `stepwire run` with a deadline: a run that hangs (or reads forever) is killed and fails.
fn stepwire_within(dir: &Path, args: &[&str], limit: Duration) -> Output {
    let child = Command::new(STEPWIRE)
        .args(["run", "--json", "--quiet"])
        .args(args)
        .current_dir(dir)
        .env("STEPWIRE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_with_deadline(child, limit)
}

#[test]
fn recording_to_a_full_disk_stops_the_run_cleanly() {
    lockbox();
    let dir = tempfile::tempdir().unwrap();
    let out = stepwire_within(
        dir.path(),
        &["--env", "lockbox", "--per-task", "2", "--record", "/dev/full"],
        Duration::from_secs(60),
    );
    assert_stopped_cleanly(&out, "No space left on device");
}

#[test]
fn resume_refuses_what_is_not_a_regular_file_at_once() {
    // /dev/full reads as endless zeros: scanning it for episodes grew without bound.
    lockbox();
    let dir = tempfile::tempdir().unwrap();
    let out = stepwire_within(
        dir.path(),
        &["--env", "lockbox", "--per-task", "2", "--record", "/dev/full", "--resume"],
        Duration::from_secs(20),
    );
    assert_stopped_cleanly(&out, "not a regular file");
}

#[test]
fn a_recording_under_a_regular_file_is_refused_with_a_clear_error() {
    lockbox();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plain"), "a file, not a directory\n").unwrap();
    for resume in [false, true] {
        let mut args = vec!["--env", "lockbox", "--per-task", "1", "--record", "plain/rec.jsonl"];
        if resume {
            args.push("--resume");
        }
        let out = stepwire_within(dir.path(), &args, Duration::from_secs(60));
        assert_stopped_cleanly(&out, "plain is not a directory");
    }
    assert_eq!(std::fs::read_to_string(dir.path().join("plain")).unwrap(), "a file, not a directory\n");
}

#[test]
fn a_recording_that_fills_up_keeps_whole_episodes_and_resumes_later() {
    lockbox();
    let dir = tempfile::tempdir().unwrap();
    let seed = stepwire(dir.path(), &["--env", "lockbox", "--per-task", "2", "--record", "rec.jsonl"]);
    assert_ok(&seed);
    let seeded = std::fs::read(dir.path().join("rec.jsonl")).unwrap();
    // Room for a few more episodes of the bigger plan, not all: a file-size limit (SIGXFSZ
    // ignored, so the write fails with EFBIG) stands in for a disk that fills up.
    let blocks = (seeded.len() + 16 * 1024) / 512;
    let out = Command::new("sh")
        .args(["-c", "trap '' XFSZ; ulimit -f \"$BLOCKS\" && exec \"$0\" \"$@\""])
        .arg(STEPWIRE)
        .args(["run", "--json", "--quiet", "--env", "lockbox", "--per-task", "10", "--record", "rec.jsonl", "--resume"])
        .env("BLOCKS", blocks.to_string())
        .env("STEPWIRE_LOG", "warn")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_stopped_cleanly(&out, "File too large");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--resume"), "the error says how to go on: {stderr}");
    let kept = std::fs::read(dir.path().join("rec.jsonl")).unwrap();
    assert!(kept.starts_with(&seeded), "an episode recorded before was changed");
    // Whole episodes only: the episode that did not fit is not left half written.
    let rec = lines(&dir.path().join("rec.jsonl"));
    assert_whole_episodes(&rec);
    let before = summaries(&rec).len();
    assert!((4..20).contains(&before), "{before} episodes");

    let out = stepwire(dir.path(), &["--env", "lockbox", "--per-task", "10", "--record", "rec.jsonl", "--resume"]);
    assert_ok(&out);
    assert_eq!(json_of(&out)["resumed"].as_u64(), Some(before as u64));
    let rec = lines(&dir.path().join("rec.jsonl"));
    validate_all(&rec);
    assert_whole_episodes(&rec);
    let ids: Vec<String> = summaries(&rec).iter().map(|l| episode_id(l)).collect();
    assert_eq!(ids.len(), 20);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 20);
}

/// An episode replays from its recording alone: the summary holds the reset params (and the
/// reset's `maxScore` and `_meta`), the transitions hold the actions.
#[tokio::test]
async fn an_episode_replays_from_its_recording_alone() {
    use stepwire_sdk::client::{BridgeClient, BridgeCommand, BridgeOptions};
    use stepwire_sdk::protocol::methods::{EnvReset, EnvStep};
    use stepwire_sdk::protocol::{RecordLine, ResetParams, StepParams};

    let dir = tempfile::tempdir().unwrap();
    let args = ["--env", "lockbox", "--tasks", "find-key", "--episodes", "2", "--seed", "9", "--record", "rec.jsonl"];
    assert_ok(&stepwire(dir.path(), &args));
    let records: Vec<RecordLine> = std::fs::read_to_string(dir.path().join("rec.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record line"))
        .collect();
    let summary = records
        .iter()
        .find_map(|r| match r {
            RecordLine::Episode(s) => Some(s.clone()),
            RecordLine::Transition(_) => None,
        })
        .expect("an episode summary");
    let reset: ResetParams = summary.reset.clone().expect("the summary holds the reset params");
    assert_eq!((reset.seed.is_some(), summary.max_score), (true, Some(1.0)), "{summary:?}");
    let mut low: Vec<(u64, String, String)> = records
        .iter()
        .filter_map(|r| match r {
            RecordLine::Transition(t) if t.episode == summary.episode => match &t.transition {
                stepwire_sdk::protocol::LevelTransition::Low { action, next_state, .. } => {
                    Some((t.step, action.clone(), next_state.observation.text.clone()))
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    low.sort_by_key(|(step, ..)| *step);
    assert_eq!(low.len() as u64, summary.steps);

    let bridge = BridgeClient::spawn(BridgeCommand::new(lockbox()).name("lockbox"), BridgeOptions::default())
        .await
        .expect("lockbox starts");
    let replayed = bridge.call::<EnvReset>(reset).await.unwrap();
    assert_eq!(replayed.task_description, summary.task_description);
    let mut score = 0.0;
    for (_, action, observation) in &low {
        let step = bridge.call::<EnvStep>(StepParams { action: action.clone(), meta: None }).await.unwrap();
        assert_eq!(&step.observation.text, observation, "`{action}` observed differently on replay");
        score = step.score;
    }
    assert_eq!(score, summary.score);
    let _ = bridge.shutdown().await;
}

#[test]
fn the_random_policy_repeats_with_its_seed_and_varies_without_it() {
    lockbox();
    let dir = tempfile::tempdir().unwrap();
    let actions = |record: &str, seed: &str| {
        let out = stepwire(
            dir.path(),
            &[
                "--env",
                "lockbox",
                "--policy",
                "random",
                "--per-task",
                "3",
                "--max-steps",
                "8",
                "--seed",
                seed,
                "--record",
                record,
            ],
        );
        assert_ok(&out);
        let s = json_of(&out);
        assert_eq!(s["policy"], "random");
        assert_eq!(s["episodes"], 6);
        assert_eq!(s["failed"], 0, "every action it takes is admissible: {s}");
        let rec = lines(&dir.path().join(record));
        validate_all(&rec);
        rec.iter()
            .filter(|l| l["level"] == "low")
            .map(|l| l["action"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let first = actions("a.jsonl", "5");
    assert_eq!(first, actions("b.jsonl", "5"), "the same seed plays the same actions");
    assert_ne!(first, actions("c.jsonl", "6"), "another seed plays others");
    assert!(first.iter().collect::<HashSet<_>>().len() > 2, "it does not repeat one action: {first:?}");
}

/// A copy of the tiny-llama fixture whose manifest says its low level writes actions freely.
fn free_writing_policy(dir: &Path) -> PathBuf {
    let src = repo().join("models/tiny-llama");
    let dst = dir.join("free-writer");
    std::fs::create_dir_all(&dst).unwrap();
    for f in ["model.onnx", "tokenizer.json", "config.json"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    let manifest = std::fs::read_to_string(src.join("stepwire.toml")).unwrap();
    assert!(manifest.contains("[low]"));
    std::fs::write(dst.join("stepwire.toml"), manifest.replace("[low]", "[low]\nadmissible = false")).unwrap();
    dst
}

#[test]
fn a_refused_free_action_is_repaired_with_a_constrained_second_choice() {
    // The fixture's weights are random: what it writes freely is noise the lockbox refuses, so
    // every step it plays went through the repair (a constrained choice among the admissible
    // actions). No refusal reaches the recording.
    lockbox();
    let dir = tempfile::tempdir().unwrap();
    let policy = free_writing_policy(dir.path());
    let out = stepwire(
        dir.path(),
        &[
            "--env",
            "lockbox",
            "--policy",
            policy.to_str().unwrap(),
            "--per-task",
            "2",
            "--max-steps",
            "4",
            "--record",
            "r.jsonl",
        ],
    );
    assert_ok(&out);
    let s = json_of(&out);
    assert_eq!(s["failed"], 0, "{s}");
    let rec = lines(&dir.path().join("r.jsonl"));
    validate_all(&rec);
    let lows: Vec<&Value> = rec.iter().filter(|l| l["level"] == "low").collect();
    assert!(!lows.is_empty());
    for l in lows {
        let seen = l["nextState"]["observation"]["text"].as_str().unwrap_or_default();
        assert!(!seen.starts_with("Invalid action"), "a refusal was recorded: {l}");
    }
}
