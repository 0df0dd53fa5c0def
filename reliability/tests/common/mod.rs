//! Running a harness binary as CI does: against this build's `stepwire` and lockbox bridge,
//! with its JSON report parsed and every criterion required to pass.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A harness still running after this is hung, not slow: on a loaded 2-core CI host the chaos
/// run takes up to 2 minutes and a soak its duration plus a few seconds. How long it took is
/// printed, not asserted: speed belongs to benchmarks.
const HANG_LIMIT: Duration = Duration::from_secs(600);

/// Runs `harness` with `args` and returns its JSON report; fails on any failed criterion, and
/// kills the harness (and fails) if it runs past [`HANG_LIMIT`].
pub fn run_harness(harness: &Path, args: &[&str]) -> Value {
    let stepwire = stepwire_tests::binary("stepwire-runtime", "stepwire");
    let bridge = stepwire_tests::lockbox_bridge();
    let started = Instant::now();
    let child = Command::new(harness)
        .args(args)
        .arg("--json")
        .arg("--stepwire")
        .arg(&stepwire)
        .arg("--bridge")
        .arg(&bridge)
        .env("STEPWIRE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the harness starts");
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let out = match finished.recv_timeout(HANG_LIMIT) {
        Ok(out) => out.expect("the harness's output is read"),
        Err(_) => {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid fits in i32"));
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("{} {args:?} hung: killed after {HANG_LIMIT:?}", harness.display());
        }
    };
    eprintln!("{} {args:?} took {:.1} s", harness.display(), started.elapsed().as_secs_f64());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); status {:?}\n{stderr}", out.status));
    let failed: Vec<&Value> = report["criteria"].as_array().unwrap().iter().filter(|c| c["passed"] != true).collect();
    assert!(failed.is_empty() && out.status.success(), "failed criteria: {failed:#?}\n{stderr}");
    report
}
