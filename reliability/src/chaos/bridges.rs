//! Finding the bridges of a chaos run and injecting faults into them.
//!
//! Every process a chaos run starts carries `STEPWIRE_CHAOS_RUN=<tag>` (set on `stepwire run`,
//! inherited by everything below it); each bridge's tree also carries its own
//! `STEPWIRE_BRIDGE_TREE=<marker>`, which the SDK's client sets. A bridge tree here is the
//! wrapper and the lockbox bridge it runs.

use std::collections::BTreeMap;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rand::Rng;

use crate::procfs::{self, TREE_MARKER};

/// The variable that tags every process of one chaos run.
pub const RUN_TAG: &str = "STEPWIRE_CHAOS_RUN";

/// One bridge's processes.
#[derive(Debug, Clone)]
pub struct BridgeTree {
    pub marker: String,
    pub pids: Vec<u32>,
    /// The wrapper (`... wrap-bridge ...`), which turns SIGUSR1 into garbage on its stdout.
    pub wrapper: Option<u32>,
}

/// Every process tagged with this run: the runner, its bridges, anything they started.
pub fn tagged(tag: &str) -> Vec<u32> {
    procfs::carrying(RUN_TAG, |v| v == tag).into_iter().map(|(pid, _)| pid).collect()
}

/// The live bridge trees of this run.
pub fn trees(tag: &str) -> Vec<BridgeTree> {
    let mut by_marker: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for pid in tagged(tag) {
        if let Some(marker) = procfs::environ_var(pid, TREE_MARKER) {
            by_marker.entry(marker).or_default().push(pid);
        }
    }
    by_marker
        .into_iter()
        .map(|(marker, pids)| {
            let wrapper = pids.iter().copied().find(|&p| procfs::cmdline(p).contains("wrap-bridge"));
            BridgeTree { marker, pids, wrapper }
        })
        .collect()
}

/// A fault done to a bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Fault {
    /// SIGKILL to one of its processes: the runner sees it gone and fails the episode.
    Kill,
    /// SIGSTOP to one of its processes: it hangs; the runner's --call-timeout must replace it.
    Stop,
    /// SIGUSR1 to the wrapper: a frame that is not JSON on its stdout (a protocol break).
    Corrupt,
}

impl Fault {
    pub const ALL: [Fault; 3] = [Fault::Kill, Fault::Stop, Fault::Corrupt];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Stop => "stop",
            Fault::Corrupt => "corrupt",
        }
    }
}

/// Does `fault` to `tree`; the pid it went to, or why it could not (the tree ended meanwhile).
pub fn inject(tree: &BridgeTree, fault: Fault, rng: &mut impl Rng) -> Result<u32, String> {
    let (pid, signal) = match fault {
        Fault::Kill => (tree.pids[rng.random_range(0..tree.pids.len())], Signal::SIGKILL),
        Fault::Stop => (tree.pids[rng.random_range(0..tree.pids.len())], Signal::SIGSTOP),
        Fault::Corrupt => (tree.wrapper.ok_or("no wrapper in the tree")?, Signal::SIGUSR1),
    };
    kill(Pid::from_raw(pid as i32), signal).map_err(|e| format!("{signal} to {pid}: {e}"))?;
    Ok(pid)
}

/// Lets processes this harness stopped run again (a stopped process cannot see its input
/// end, so it would outlive a killed runner because of the harness, not of stepwire).
pub fn resume_stopped(pids: &[u32]) -> usize {
    pids.iter().filter(|&&p| procfs::alive(p) && kill(Pid::from_raw(p as i32), Signal::SIGCONT).is_ok()).count()
}

/// Processes of this run still alive, by the tag and by `pgrep -f <work dir>`, described.
pub fn strays(tag: &str, work_dir: &str) -> Vec<String> {
    let mut pids = tagged(tag);
    pids.extend(procfs::pgrep(work_dir));
    pids.sort_unstable();
    pids.dedup();
    pids.into_iter().map(|p| format!("{p} [{}] {}", procfs::state(p).unwrap_or('?'), procfs::cmdline(p))).collect()
}

/// Waits up to `wait` for this run's processes to end; those still alive then (which are
/// killed, so the next step starts clean).
pub async fn wait_for_no_strays(tag: &str, work_dir: &str, wait: std::time::Duration) -> Vec<String> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let left = strays(tag, work_dir);
        if left.is_empty() {
            return left;
        }
        if std::time::Instant::now() > deadline {
            for line in &left {
                if let Some(pid) = line.split_whitespace().next().and_then(|p| p.parse::<i32>().ok()) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
            return left;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
