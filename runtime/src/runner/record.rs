//! The recording file: one `RecordLine` a line, written an episode at a time.
//!
//! Each episode's lines (its transitions, then its summary) are written with one `write_all`,
//! flushed and fsynced, so the file is always a sequence of whole episodes, except possibly a
//! torn tail after a hard kill. Resuming checks that every line is a record (see
//! [`super::resume`]), cuts that torn tail and nothing else, then only appends; a file that is
//! not a recording is refused and left as it was.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use stepwire_sdk::protocol::{LevelTransition, Observation, RecordLine};

pub use super::resume::Existing;
use super::resume::{self, ScanError};

/// An open recording, appended to episode by episode.
#[derive(Debug)]
pub struct Recording {
    path: PathBuf,
    file: File,
    /// Observation text and parts longer than this are cut before writing.
    max_observation_bytes: usize,
}

/// Default of `--max-observation-bytes`: far above any real game's observation (ALFWorld's
/// and ScienceWorld's are under 4 KiB), far below what would balloon a recording.
pub const DEFAULT_MAX_OBSERVATION_BYTES: usize = 64 * 1024;

impl Recording {
    /// Creates the file (and its directory). Fails if it exists and is not empty, unless `overwrite`.
    pub fn create(path: &Path, overwrite: bool) -> anyhow::Result<Self> {
        refuse_file_as_directory(path)?;
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
        Ok(Recording { path: path.to_path_buf(), file, max_observation_bytes: DEFAULT_MAX_OBSERVATION_BYTES })
    }

    /// Opens an existing recording for resuming: reads its summaries, cuts a torn last episode
    /// (the bytes after the last summary line) and opens it for appending. A missing file is
    /// created empty; a file that is not a recording is refused, unchanged.
    pub fn resume(path: &Path) -> anyhow::Result<(Self, Existing)> {
        if !path.exists() {
            return Ok((Self::create(path, false)?, Existing::default()));
        }
        // A device or a pipe is no recording to continue (and /dev/full or /dev/zero read as
        // endless zeros: scanning one would never end).
        let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        if !meta.is_file() {
            anyhow::bail!(
                "{} is not a regular file ({}); --resume continues a recording file written by \
                 `stepwire run --record`",
                path.display(),
                file_kind(&meta)
            );
        }
        let existing = {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            resume::scan(BufReader::new(file)).map_err(|e| match e {
                ScanError::NotARecording { .. } => anyhow::anyhow!(
                    "{} is not a stepwire recording ({e}); --resume continues only files written by \
                     `stepwire run --record`, so it was left unchanged: record to another file",
                    path.display()
                ),
                ScanError::Io(e) => anyhow::Error::new(e).context(format!("reading {}", path.display())),
            })?
        };
        // Append mode: every write lands at the end, whatever else happens to the file.
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("opening {} for appending", path.display()))?;
        let recording =
            Recording { path: path.to_path_buf(), file, max_observation_bytes: DEFAULT_MAX_OBSERVATION_BYTES };
        if existing.keep_until < existing.len {
            recording.cut_torn_tail(existing.keep_until, existing.len)?;
        }
        Ok((recording, existing))
    }

    /// Cuts the torn last episode, if the file is still the size that was read (a file that grew
    /// in between has another writer: better to stop than to cut what it wrote).
    fn cut_torn_tail(&self, keep_until: u64, scanned_len: u64) -> anyhow::Result<()> {
        let len = self.file.metadata()?.len();
        if len != scanned_len {
            anyhow::bail!(
                "{} changed while it was read ({scanned_len} then {len} bytes): is another stepwire \
                 writing it?",
                self.path.display()
            );
        }
        self.file.set_len(keep_until).with_context(|| format!("cutting the torn tail of {}", self.path.display()))?;
        self.file.sync_data()?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn with_observation_limit(mut self, max_bytes: usize) -> Self {
        self.max_observation_bytes = max_bytes;
        self
    }

    /// Appends one episode's lines as one write, then flushes and fsyncs. When that fails (a full
    /// disk), the part of the episode that reached the file is cut off, so the file still ends
    /// with a whole episode.
    pub fn write_episode(&mut self, mut lines: Vec<RecordLine>) -> anyhow::Result<()> {
        let mut buf = Vec::with_capacity(lines.len() * 512);
        let mut cut = 0;
        for line in &mut lines {
            cut += clip_observations(line, self.max_observation_bytes);
            serde_json::to_writer(&mut buf, line)?;
            buf.push(b'\n');
        }
        // Only a regular file can be cut back (not /dev/full, a pipe or a terminal).
        let whole_until = self.file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
        let written = self.file.write_all(&buf).and_then(|()| self.file.flush()).and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            let kept = match whole_until {
                Some(len) => match self.file.set_len(len).and_then(|()| self.file.sync_data()) {
                    Ok(()) => "it ends with the last whole episode",
                    Err(_) => "its last episode may be torn; --resume cuts it",
                },
                None => "nothing more was recorded",
            };
            return Err(anyhow::Error::new(e).context(format!(
                "writing {} ({kept}; make room and continue it with --resume)",
                self.path.display()
            )));
        }
        if cut > 0 {
            tracing::warn!(
                bytes = cut,
                limit = self.max_observation_bytes,
                "cut observations over --max-observation-bytes in the recording"
            );
        }
        Ok(())
    }
}

/// A path whose directory is a file cannot be created by anyone: say so plainly (creating the
/// directory would only report "File exists").
fn refuse_file_as_directory(path: &Path) -> anyhow::Result<()> {
    for dir in path.ancestors().skip(1).filter(|d| !d.as_os_str().is_empty()) {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) => anyhow::bail!("cannot record to {}: {} is not a directory", path.display(), dir.display()),
            Err(_) => continue, // missing (created below) or itself under a file: look further up
        }
    }
    Ok(())
}

/// What kind of file a path is, for error messages.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        } else if t.is_block_device() {
            return "a block device";
        } else if t.is_fifo() {
            return "a named pipe";
        } else if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// Cuts every observation text and part of `line` to `max` bytes, marking each cut; returns the
/// bytes removed.
fn clip_observations(line: &mut RecordLine, max: usize) -> usize {
    let RecordLine::Transition(t) = line else { return 0 };
    let observations: Vec<&mut Observation> = match &mut t.transition {
        LevelTransition::High { state, next_state, .. } => {
            std::iter::once(&mut state.observation).chain(next_state.as_mut().map(|s| &mut s.observation)).collect()
        }
        LevelTransition::Low { state, next_state, .. } => vec![&mut state.observation, &mut next_state.observation],
        LevelTransition::Progress { state, .. } => vec![&mut state.observation],
    };
    observations
        .into_iter()
        .map(|o| clip_text(&mut o.text, max) + o.parts.values_mut().map(|p| clip_text(p, max)).sum::<usize>())
        .sum()
}

fn clip_text(text: &mut String, max: usize) -> usize {
    if text.len() <= max {
        return 0;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let removed = text.len() - end;
    text.truncate(end);
    text.push_str(&format!(" …[{removed} bytes cut: --max-observation-bytes]"));
    removed
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
    fn long_observations_are_cut_on_a_character_boundary() {
        let mut text = format!("{}é{}", "a".repeat(9), "b".repeat(100));
        let removed = clip_text(&mut text, 10);
        assert!(text.starts_with("aaaaaaaaa …[") && text.contains("bytes cut"), "{text}");
        assert_eq!(removed, 102);
        let mut short = "short".to_string();
        assert_eq!(clip_text(&mut short, 10), 0);
        assert_eq!(short, "short");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }
}
