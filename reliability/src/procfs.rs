//! What `/proc` says about a process: resident memory, open descriptors, threads, whether it is
//! still alive, and which processes carry a given variable in their environment.

use std::path::PathBuf;

/// The variable the SDK's bridge client sets in every bridge's environment (one value per
/// bridge, inherited by everything the bridge starts): how a bridge's whole tree is found.
pub const TREE_MARKER: &str = "STEPWIRE_BRIDGE_TREE";

/// One reading of a process's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    pub rss_kib: u64,
    pub fds: u64,
    pub threads: u64,
}

fn proc_dir(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}"))
}

/// A `Name:   value kB` field of `/proc/<pid>/status`.
fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(proc_dir(pid).join("status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    line[field.len() + 1..].split_whitespace().next()?.parse().ok()
}

/// VmRSS in KiB; `None` once the process is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS")
}

pub fn threads(pid: u32) -> Option<u64> {
    status_field(pid, "Threads")
}

/// Entries of `/proc/<pid>/fd`.
pub fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(proc_dir(pid).join("fd")).ok()?.count() as u64)
}

pub fn resources(pid: u32) -> Option<Resources> {
    Some(Resources { rss_kib: rss_kib(pid)?, fds: open_fds(pid)?, threads: threads(pid)? })
}

/// The one-letter state of `/proc/<pid>/stat` (R, S, T, Z, ...).
pub fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(proc_dir(pid).join("stat")).ok()?;
    // `comm` may hold spaces and parentheses: the state follows the last `)`.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Exists and is not a zombie waiting to be reaped.
pub fn alive(pid: u32) -> bool {
    state(pid).is_some_and(|s| s != 'Z' && s != 'X')
}

/// Every pid in `/proc`.
pub fn all_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()
}

/// The value of `name` in the process's environment (as it was at exec).
pub fn environ_var(pid: u32, name: &str) -> Option<String> {
    let environ = std::fs::read(proc_dir(pid).join("environ")).ok()?;
    let prefix = format!("{name}=");
    environ
        .split(|&b| b == 0)
        .find_map(|var| var.strip_prefix(prefix.as_bytes()).map(|v| String::from_utf8_lossy(v).into_owned()))
}

/// Live processes (other than this one) whose environment has `name` set to a value for which
/// `wanted` holds, with that value.
pub fn carrying(name: &str, wanted: impl Fn(&str) -> bool) -> Vec<(u32, String)> {
    let me = std::process::id();
    all_pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter_map(|pid| environ_var(pid, name).filter(|v| wanted(v)).map(|v| (pid, v)))
        .filter(|(pid, _)| alive(*pid))
        .collect()
}

/// The command line, arguments joined by spaces (for reports).
pub fn cmdline(pid: u32) -> String {
    let raw = std::fs::read(proc_dir(pid).join("cmdline")).unwrap_or_default();
    raw.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a)).collect::<Vec<_>>().join(" ")
}

/// `pgrep -f pattern`: pids whose command line matches (an independent second opinion to the
/// environment scan; a missing `pgrep` finds nothing and says so in the log).
pub fn pgrep(pattern: &str) -> Vec<u32> {
    match std::process::Command::new("pgrep").args(["-f", pattern]).output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|&pid| alive(pid))
            .collect(),
        Err(e) => {
            tracing::warn!("pgrep did not run: {e}");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_readable() {
        let me = std::process::id();
        let r = resources(me).unwrap();
        assert!(r.rss_kib > 0 && r.fds >= 3 && r.threads >= 1, "{r:?}");
        assert!(alive(me));
        assert!(environ_var(me, "PATH").is_some() || std::env::var("PATH").is_err());
    }
}
