//! Recordings that cannot be written: `/dev/full` (every write fails with ENOSPC), a path under a
//! regular file (ENOTDIR, whoever you are), and a real recording being resumed on a disk that
//! fills up. Each must stop the run cleanly: a non-zero exit, an error that says what happened,
//! no panic, no process left, and nothing already recorded lost.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::process::Command;

use super::bridges;
use super::recording;
use super::runner::{RunSpec, Runner};
use crate::procfs;

/// Longest a run that cannot record may take to stop.
const STOP_WAIT: Duration = Duration::from_secs(60);
/// Memory a run that cannot record may reach before it counts as a runaway.
const RSS_LIMIT_KIB: u64 = 1024 * 1024;

/// One unwritable-recording case and what happened.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskCase {
    pub name: String,
    pub passed: bool,
    pub exit: Option<i32>,
    /// The run's `error:` line.
    pub error: String,
    /// What was checked, and what failed.
    pub detail: String,
}

/// How a resumed recording is made to run out of space.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Filler {
    /// A small tmpfs in a private mount namespace (`unshare -m`): a real ENOSPC.
    Tmpfs,
    /// A file-size limit (`ulimit -f`, SIGXFSZ ignored): EFBIG, for hosts where mounting is not allowed.
    FileSizeLimit,
}

pub async fn run_all(spec: &RunSpec) -> Vec<DiskCase> {
    let mut cases = Vec::new();
    let dev_full = Path::new("/dev/full");
    cases.push(unwritable(spec, "record to /dev/full", dev_full, false, "No space left on device").await);
    cases.push(unwritable(spec, "--resume /dev/full", dev_full, true, "not a regular file").await);
    let blocker = spec.work_dir.join("a-regular-file");
    let _ = std::fs::write(&blocker, b"not a directory\n");
    let under_file = blocker.join("rec.jsonl");
    cases.push(unwritable(spec, "record under a regular file", &under_file, false, "not a directory").await);
    cases.push(unwritable(spec, "--resume under a regular file", &under_file, true, "not a directory").await);
    cases.push(resumed_until_full(spec).await);
    cases
}

/// A run whose recording cannot be written at all.
async fn unwritable(spec: &RunSpec, name: &str, record: &Path, resume: bool, needle: &str) -> DiskCase {
    let file_name = format!("disk-{}", cases_file_name(name));
    let runner = match spec.start(&file_name, record, resume, 0) {
        Ok(r) => r,
        Err(e) => return case(name, None, "", Err(format!("did not start: {e:#}"))),
    };
    let (status, stderr, peak) = watch(runner).await;
    let mut problems = stop_problems(status, &stderr, needle, peak);
    problems.extend(strays(spec).await);
    case(name, status.and_then(|s| s.code()), &stderr, verdict(problems, peak))
}

fn cases_file_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect()
}

/// Waits for the run to stop, killing it past [`STOP_WAIT`] or [`RSS_LIMIT_KIB`]: its status
/// (`None` if it had to be killed), its stderr and its peak RSS.
async fn watch(mut runner: Runner) -> (Option<std::process::ExitStatus>, String, u64) {
    let stderr_path = runner.stderr.clone();
    let deadline = Instant::now() + STOP_WAIT;
    let mut peak = 0;
    let status = loop {
        if let Ok(Some(status)) = runner.child.try_wait() {
            break Some(status);
        }
        peak = peak.max(procfs::rss_kib(runner.pid).unwrap_or(0));
        if Instant::now() > deadline || peak > RSS_LIMIT_KIB {
            runner.kill().await;
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    (status, stderr, peak)
}

/// Whatever is wrong with how a run that could not record stopped.
fn stop_problems(status: Option<std::process::ExitStatus>, stderr: &str, needle: &str, peak: u64) -> Vec<String> {
    let mut problems = Vec::new();
    match status {
        None if peak > RSS_LIMIT_KIB => problems.push(format!("killed at {} MiB of RSS", peak / 1024)),
        None => problems.push(format!("still running after {} s: killed", STOP_WAIT.as_secs())),
        Some(s) if s.success() => problems.push("exit 0 although nothing could be recorded".into()),
        Some(s) if s.code().is_none() => problems.push(format!("ended by a signal: {s}")),
        Some(_) => {}
    }
    if stderr.contains("panicked") {
        problems.push("panicked".into());
    }
    if !stderr.contains("error:") {
        problems.push("no `error:` line on stderr".into());
    } else if !stderr.to_lowercase().contains(&needle.to_lowercase()) {
        problems.push(format!("the error does not say `{needle}`"));
    }
    problems
}

async fn strays(spec: &RunSpec) -> Vec<String> {
    let work = spec.work_dir.display().to_string();
    bridges::wait_for_no_strays(&spec.tag, &work, Duration::from_secs(10))
        .await
        .into_iter()
        .map(|s| format!("stray process: {s}"))
        .collect()
}

fn verdict(problems: Vec<String>, peak_kib: u64) -> Result<String, String> {
    if problems.is_empty() {
        Ok(match peak_kib {
            0 => "stopped cleanly, before its memory was first sampled (50 ms)".to_string(),
            kib => format!("stopped cleanly (peak RSS {} MiB)", kib.div_ceil(1024)),
        })
    } else {
        Err(problems.join("; "))
    }
}

fn case(name: &str, exit: Option<i32>, stderr: &str, outcome: Result<String, String>) -> DiskCase {
    let error = stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_default().to_string();
    let (passed, detail) = match outcome {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    DiskCase { name: name.to_string(), passed, exit, error, detail }
}

/// A real recording of a few episodes, resumed with a bigger plan on a disk with room for only a
/// few more: the run must stop with an error, and the file must still hold every episode it had,
/// as whole episodes, and resume to completion once there is room.
async fn resumed_until_full(spec: &RunSpec) -> DiskCase {
    let name = "resumed recording on a full disk";
    match resumed_until_full_inner(spec).await {
        Ok((exit, stderr, detail)) => case(name, exit, &stderr, Ok(detail)),
        Err((exit, stderr, detail)) => case(name, exit, &stderr, Err(detail)),
    }
}

type Outcome = Result<(Option<i32>, String, String), (Option<i32>, String, String)>;

async fn resumed_until_full_inner(spec: &RunSpec) -> Outcome {
    let fail = |detail: String| Err((None, String::new(), detail));
    let dir = spec.work_dir.join("full-disk");
    let _ = std::fs::create_dir_all(&dir);
    // The seed: four whole episodes.
    let small = RunSpec { per_task: 2, repeat: 1, ..spec.clone() };
    let seed = dir.join("seed.jsonl");
    let (status, _, stderr) = match small.start("disk-seed", &seed, false, 0) {
        Ok(r) => r.finish(STOP_WAIT).await,
        Err(e) => return fail(format!("the seed run did not start: {e:#}")),
    };
    if !status.is_some_and(|s| s.success()) {
        return fail(format!("the seed run failed: {status:?}: {stderr}"));
    }
    let seed_bytes = std::fs::read(&seed).unwrap_or_default();

    // The bigger plan, resumed where only a little more fits.
    let bigger = RunSpec { per_task: 10, repeat: 1, ..spec.clone() };
    let after = dir.join("after.jsonl");
    let filler = if tmpfs_allowed(&dir).await { Filler::Tmpfs } else { Filler::FileSizeLimit };
    let room = seed_bytes.len().div_ceil(4096) * 4096 + 16 * 1024;
    let runner = match start_filling(&bigger, filler, &seed, &after, room) {
        Ok(r) => r,
        Err(e) => return fail(format!("did not start: {e:#}")),
    };
    let (status, stderr, peak) = watch(runner).await;
    let needle = match filler {
        Filler::Tmpfs => "No space left on device",
        Filler::FileSizeLimit => "File too large",
    };
    let mut problems = stop_problems(status, &stderr, needle, peak);
    problems.extend(strays(spec).await);
    let exit = status.and_then(|s| s.code());
    let kept = std::fs::read(&after).unwrap_or_default();
    if !kept.starts_with(&seed_bytes) {
        problems.push("the episodes recorded before were changed or lost".into());
    }
    let contents = recording::parse(&kept);
    if !contents.whole() {
        problems.push(format!(
            "the file does not end with a whole episode (problem {:?}, unfinished tail {})",
            contents.problem, contents.unfinished_tail
        ));
    }
    // With room again, the same file resumes to completion.
    let finished = dir.join("finished.jsonl");
    let _ = std::fs::copy(&after, &finished);
    let (status2, stdout2, stderr2) = match bigger.start("disk-resume-with-room", &finished, true, 0) {
        Ok(r) => r.finish(STOP_WAIT).await,
        Err(e) => return Err((exit, stderr, format!("the resume with room did not start: {e:#}"))),
    };
    let planned = super::planned_ids(&stdout2);
    let done = recording::read(&finished).unwrap_or_default();
    if !status2.is_some_and(|s| s.success()) {
        problems.push(format!("resuming it with room failed: {status2:?}: {}", last_line(&stderr2)));
    } else if planned.is_empty() || !super::same_ids(&planned, &done.summaries) || !done.whole() {
        problems.push(format!(
            "resumed with room: {} planned, {} summaries, duplicates {:?}",
            planned.len(),
            done.summaries.len(),
            done.duplicates()
        ));
    }
    let detail = format!(
        "{filler:?}: {} episodes before, {} after the failed resume, {} once resumed with room",
        recording::parse(&seed_bytes).summaries.len(),
        contents.summaries.len(),
        done.summaries.len()
    );
    if problems.is_empty() {
        Ok((exit, stderr, detail))
    } else {
        Err((exit, stderr, format!("{detail}; {}", problems.join("; "))))
    }
}

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or_default()
}

/// Whether this process may mount a tmpfs in a private mount namespace (root, or user
/// namespaces allowed).
async fn tmpfs_allowed(dir: &Path) -> bool {
    let probe = dir.join("probe");
    let _ = std::fs::create_dir_all(&probe);
    let ok = Command::new("unshare")
        .args(["-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs \"$1\"", "sh"])
        .arg(&probe)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !ok {
        tracing::info!("cannot mount a tmpfs here; the full-disk case uses a file-size limit instead");
    }
    ok
}

/// Starts `bigger`'s run resuming a copy of `seed` where only `room` bytes fit; the file is
/// copied to `after` when the run ends.
fn start_filling(bigger: &RunSpec, filler: Filler, seed: &Path, after: &Path, room: usize) -> anyhow::Result<Runner> {
    match filler {
        Filler::Tmpfs => {
            let mount = seed.with_file_name("tmpfs");
            std::fs::create_dir_all(&mount)?;
            let record = mount.join("rec.jsonl");
            let mut args = bigger.args(&record);
            args.push("--resume".into());
            // The file lives only inside the namespace: copy it out before the namespace ends.
            let script = "mount -t tmpfs -o size=\"$ROOM\" tmpfs \"$MNT\" || exit 90; \
                          cp \"$SEED\" \"$MNT/rec.jsonl\" || exit 91; \
                          \"$@\"; rc=$?; cp \"$MNT/rec.jsonl\" \"$OUT\"; exit $rc";
            let mut command = Command::new("unshare");
            command
                .args(["-m", "sh", "-c", script, "sh"])
                .arg(&bigger.stepwire)
                .args(&args)
                .env("ROOM", room.to_string())
                .env("MNT", &mount)
                .env("SEED", seed)
                .env("OUT", after);
            bigger.start_with("disk-full-tmpfs", &mut command, 0)
        }
        Filler::FileSizeLimit => {
            std::fs::copy(seed, after)?;
            let mut args = bigger.args(after);
            args.push("--resume".into());
            // `ulimit -f` counts 512-byte blocks; SIGXFSZ ignored so the write fails with EFBIG.
            let blocks = room / 512;
            let script = "trap '' XFSZ; ulimit -f \"$BLOCKS\" && exec \"$@\"";
            let mut command = Command::new("sh");
            command.args(["-c", script, "sh"]).arg(&bigger.stepwire).args(&args).env("BLOCKS", blocks.to_string());
            bigger.start_with("disk-full-fsize", &mut command, 0)
        }
    }
}
