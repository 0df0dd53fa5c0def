//! The recording file: one `RecordLine` a line, written an episode at a time.
//!
//! Each episode's lines (its transitions, then its summary) are written with one `write_all`,
//! flushed and fsynced, so the file is always a sequence of whole episodes, except possibly a
//! torn tail after a hard kill. Resuming cuts that tail off: everything after the last summary
//! line goes.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use stepwire_sdk::protocol::{EpisodeSummary, RecordLine};

/// An open recording, appended to episode by episode.
#[derive(Debug)]
pub struct Recording {
    path: PathBuf,
    file: File,
}

/// What a resumed file already holds.
#[derive(Debug, Default)]
pub struct Existing {
    /// Summaries by `EpisodeKey::id()` (the last one wins if a key appears twice).
    pub summaries: HashMap<String, EpisodeSummary>,
    /// Bytes cut from the end (a torn line or an incomplete episode).
    pub truncated_bytes: u64,
    /// Lines that did not parse before the last summary (kept, but reported).
    pub bad_lines: usize,
}

impl Recording {
    /// Creates the file (and its directory). Fails if it exists and is not empty, unless `overwrite`.
    pub fn create(path: &Path, overwrite: bool) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        if !overwrite && std::fs::metadata(path).map(|m| m.len() > 0).unwrap_or(false) {
            anyhow::bail!(
                "{} already holds a recording; pass --resume to continue it or --overwrite to replace it",
                path.display()
            );
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(Recording { path: path.to_path_buf(), file })
    }

    /// Opens an existing file for resuming: reads its summaries, cuts any torn tail, and
    /// positions at the end. A missing file is created empty.
    pub fn resume(path: &Path) -> anyhow::Result<(Self, Existing)> {
        if !path.exists() {
            return Ok((Self::create(path, false)?, Existing::default()));
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let existing = scan_and_repair(&mut file).with_context(|| format!("reading {}", path.display()))?;
        file.seek(SeekFrom::End(0))?;
        Ok((Recording { path: path.to_path_buf(), file }, existing))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one episode's lines as one write, then flushes and fsyncs.
    pub fn write_episode(&mut self, lines: &[RecordLine]) -> anyhow::Result<()> {
        let mut buf = Vec::with_capacity(lines.len() * 512);
        for line in lines {
            serde_json::to_writer(&mut buf, line)?;
            buf.push(b'\n');
        }
        self.file.write_all(&buf).with_context(|| format!("writing {}", self.path.display()))?;
        self.file.flush()?;
        self.file.sync_data().with_context(|| format!("syncing {}", self.path.display()))?;
        Ok(())
    }
}

/// Reads every line; keeps the file up to the end of the last parseable summary line.
fn scan_and_repair(file: &mut File) -> anyhow::Result<Existing> {
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(&mut *file);
    let mut existing = Existing::default();
    let mut offset: u64 = 0;
    let mut keep_until: u64 = 0;
    let mut bad_since_keep = 0usize;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        offset += n as u64;
        let complete = line.ends_with(b"\n");
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<RecordLine>(text) {
            Ok(RecordLine::Episode(summary)) if complete => {
                existing.summaries.insert(summary.episode.id(), summary);
                keep_until = offset;
                existing.bad_lines += bad_since_keep;
                bad_since_keep = 0;
            }
            Ok(_) if complete => {}
            _ => bad_since_keep += 1,
        }
    }
    drop(reader);
    if keep_until < len {
        file.set_len(keep_until)?;
        file.sync_data()?;
        existing.truncated_bytes = len - keep_until;
    }
    Ok(existing)
}

/// `runs/<env>-<UTC timestamp>.jsonl`, relative to the current directory.
pub fn default_path(env: &str) -> PathBuf {
    PathBuf::from("runs").join(format!("{}-{}.jsonl", safe_name(env), utc_timestamp()))
}

fn safe_name(env: &str) -> String {
    env.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// The newest `runs/<env>-<timestamp>.jsonl`, for `--resume` without `--record`.
pub fn latest_default(env: &str) -> Option<PathBuf> {
    let prefix = format!("{}-", safe_name(env));
    let mut found: Vec<PathBuf> = std::fs::read_dir("runs")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "jsonl")
                && p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.strip_prefix(&prefix).is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
                })
        })
        .collect();
    found.sort();
    found.pop()
}

/// `YYYYMMDDTHHMMSSZ` in UTC, from the system clock.
fn utc_timestamp() -> String {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }
}
