//! Runs a target for a number of inputs or a time, with a watchdog for hangs and a count of
//! executions; a failure comes back shrunk.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

use crate::targets::Target;

/// How long one input may take before the run is declared hung.
pub const HANG_AFTER: Duration = Duration::from_secs(10);

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    Executions(u64),
    Time(Duration),
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: &'static str,
    pub executions: u64,
    pub seconds: f64,
    /// The shrunk failing input and why, when one failed.
    pub failure: Option<String>,
    /// Peak resident memory of this process at the end (VmHWM), in KiB.
    pub peak_rss_kib: u64,
}

/// Runs `target` until `budget` is spent or an input fails; `on_progress` gets the count.
pub fn run(target: &Target, budget: Budget, seed: u64, on_progress: &dyn Fn(u64)) -> Report {
    let started = Instant::now();
    let executions = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = spawn_watchdog(target.name, executions.clone(), done.clone());
    let batch: u64 = 20_000;
    let mut failure = None;
    let mut round = 0u64;
    loop {
        let count = executions.load(Ordering::Relaxed);
        let remaining = match budget {
            Budget::Executions(n) if count >= n => break,
            Budget::Executions(n) => (n - count).min(batch),
            Budget::Time(t) if started.elapsed() >= t => break,
            Budget::Time(_) => batch,
        };
        let config =
            Config { cases: remaining as u32, failure_persistence: None, max_shrink_iters: 2_000, ..Config::default() };
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&round.to_le_bytes());
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &key);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let check = target.check;
        let counter = executions.clone();
        let result = runner.run(&target.strategy, |input| {
            counter.fetch_add(1, Ordering::Relaxed);
            check(&input);
            Ok(())
        });
        on_progress(executions.load(Ordering::Relaxed));
        if let Err(e) = result {
            failure = Some(match e {
                TestError::Fail(why, input) => format!("{why}; input: {input:?}"),
                TestError::Abort(why) => format!("aborted: {why}"),
            });
            break;
        }
        round += 1;
    }
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    Report {
        target: target.name,
        executions: executions.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        failure,
        peak_rss_kib: peak_rss_kib(),
    }
}

/// Aborts the process when no input finishes for [`HANG_AFTER`]: a hang is a finding too.
fn spawn_watchdog(
    name: &'static str,
    executions: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut last = (executions.load(Ordering::Relaxed), Instant::now());
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            let now = executions.load(Ordering::Relaxed);
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() > HANG_AFTER {
                eprintln!(
                    "stepwire-fuzz: target {name} hung: no input finished for {HANG_AFTER:?} (after {now} inputs)"
                );
                std::process::exit(3);
            }
        }
    })
}

/// VmHWM of this process, in KiB (0 where `/proc` is missing).
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}
