//! What a recording to be resumed holds, and which torn tail may be cut from it.
//!
//! A recording is only ever appended to. The one repair allowed is the tail a crash leaves: each
//! episode is written with one `write_all` (its transitions, then its summary), so a hard kill can
//! leave part of the last episode's lines after the last summary, the final one cut short. Those
//! bytes are cut before appending. Any other line that is not a record means the file is not a
//! recording (or was edited by hand): it is refused, and the caller leaves it untouched.

use std::collections::HashMap;
use std::io::BufRead;

use stepwire_sdk::protocol::{EpisodeSummary, RecordLine};

/// How every line the runtime writes begins (serde writes an internally tagged enum's tag first).
const LINE_STARTS: [&str; 2] = [r#"{"kind":"transition","#, r#"{"kind":"episode","#];

/// The longest piece of an offending line quoted in an error.
const QUOTE_CHARS: usize = 80;

/// What a recording already holds.
#[derive(Debug, Default)]
pub struct Existing {
    /// Summaries by `EpisodeKey::id()` (the last one wins if a key appears twice).
    pub summaries: HashMap<String, EpisodeSummary>,
    /// Where the whole episodes end: the bytes after it are a torn last episode.
    pub keep_until: u64,
    /// The size of what was read.
    pub len: u64,
}

/// Why a file cannot be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("line {line}: {reason}: {quote:?}")]
    NotARecording { line: usize, reason: String, quote: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads a recording, changing nothing: its summaries and where its torn tail begins, or the
/// first line that shows it is not a recording.
pub fn scan(mut reader: impl BufRead) -> Result<Existing, ScanError> {
    let mut existing = Existing::default();
    // The episode whose lines follow the last summary, if any: a torn write holds only one.
    let mut unfinished: Option<String> = None;
    let mut line = Vec::new();
    let mut line_no = 0usize;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        existing.len += n as u64;
        let complete = line.ends_with(b"\n");
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            if complete && unfinished.is_none() {
                existing.keep_until = existing.len; // a blank line between whole episodes stays
            }
            continue;
        }
        let refuse = |reason: String| ScanError::NotARecording { line: line_no, reason, quote: quote(text) };
        if !complete {
            // The last line, cut short: a torn write if it is the beginning of a record line.
            if !is_torn_record(text) {
                return Err(refuse("the last line is not a recording line".into()));
            }
            break;
        }
        match serde_json::from_str::<RecordLine>(text) {
            Ok(RecordLine::Episode(summary)) => {
                existing.summaries.insert(summary.episode.id(), summary);
                existing.keep_until = existing.len;
                unfinished = None;
            }
            Ok(RecordLine::Transition(t)) => {
                let id = t.episode.id();
                match &unfinished {
                    Some(other) if *other != id => {
                        return Err(refuse(format!(
                            "episode {id} begins before episode {other} has its summary line \
                             (the runtime writes whole episodes)"
                        )))
                    }
                    _ => unfinished = Some(id),
                }
            }
            Err(e) => return Err(refuse(format!("not a recording line ({e})"))),
        }
    }
    Ok(existing)
}

/// A line cut short by a crash: the beginning of a record line as the runtime writes it.
fn is_torn_record(text: &str) -> bool {
    let starts_right = LINE_STARTS.iter().any(|s| s.starts_with(text) || text.starts_with(s));
    starts_right
        && match serde_json::from_str::<RecordLine>(text) {
            Ok(_) => true, // cut just before its newline
            Err(e) => e.is_eof(),
        }
}

fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwire_sdk::protocol::{
        EpisodeKey, EpisodeOutcome, LevelTransition, Observation, ProgressState, TransitionRecord,
    };

    fn key(variation: u64) -> EpisodeKey {
        EpisodeKey { env: "e".into(), task: "t".into(), split: "train".into(), variation, repeat: 0 }
    }

    /// A line as the runtime writes it.
    fn line(record: RecordLine) -> String {
        serde_json::to_string(&record).unwrap()
    }

    fn transition(variation: u64, step: u64) -> String {
        let state = ProgressState {
            subtask: "s".into(),
            previous_progress: String::new(),
            action: "a".into(),
            observation: Observation::text("o"),
        };
        line(RecordLine::Transition(TransitionRecord {
            episode: key(variation),
            step,
            transition: LevelTransition::Progress { state, progress: "p".into() },
            reward: 0.0,
            done: false,
            usage: Default::default(),
            meta: None,
        }))
    }

    fn summary(variation: u64) -> String {
        let won = EpisodeSummary::new(key(variation), "d", EpisodeOutcome::Won);
        line(RecordLine::Episode(EpisodeSummary { score: 1.0, steps: 1, ..won }))
    }

    fn lines(ls: &[String]) -> String {
        ls.iter().map(|l| format!("{l}\n")).collect()
    }

    fn not_a_recording(text: &str) -> (usize, String) {
        match scan(text.as_bytes()) {
            Err(ScanError::NotARecording { line, reason, .. }) => (line, reason),
            other => panic!("accepted: {other:?}"),
        }
    }

    #[test]
    fn whole_episodes_are_kept() {
        let text = lines(&[transition(0, 0), summary(0), transition(1, 0), summary(1)]);
        let e = scan(text.as_bytes()).unwrap();
        assert_eq!(e.summaries.len(), 2);
        assert_eq!(e.keep_until, text.len() as u64);
        assert_eq!(e.len, text.len() as u64);
    }

    #[test]
    fn a_torn_last_episode_is_the_only_tail_to_cut() {
        let whole = lines(&[transition(0, 0), summary(0)]);
        let t = transition(1, 1);
        for tail in [
            lines(&[transition(1, 0)]),
            format!("{}{}", lines(&[transition(1, 0)]), &t[..t.len() / 2]),
            t[..3].to_string(),
            t.clone(), // everything but the newline
        ] {
            let text = format!("{whole}{tail}");
            let e = scan(text.as_bytes()).unwrap_or_else(|e| panic!("{tail:?}: {e}"));
            assert_eq!(e.keep_until, whole.len() as u64, "{tail:?}");
            assert_eq!(e.summaries.len(), 1);
        }
    }

    #[test]
    fn a_text_file_is_not_a_recording() {
        let services = "# Network services, Internet style\n\ntcpmux\t\t1/tcp\n";
        assert_eq!(not_a_recording(services).0, 1);
        // Blank lines are skipped: the first line with something on it decides.
        assert_eq!(not_a_recording("\n\nhello\n").0, 3);
        // Without a newline, a line that does not begin like a record is no torn record either.
        assert_eq!(not_a_recording("hello").0, 1);
        assert_eq!(not_a_recording(r#"{"a":"#).0, 1);
    }

    #[test]
    fn json_that_is_not_a_record_is_refused_wherever_it_is() {
        let (line, reason) = not_a_recording(&lines(&[r#"{"kind":"note"}"#.into()]));
        assert_eq!(line, 1);
        assert!(reason.contains("not a recording line"), "{reason}");
        let text = format!("{}{}\n{}", lines(&[transition(0, 0), summary(0)]), r#"{"x":1}"#, lines(&[summary(1)]));
        assert_eq!(not_a_recording(&text).0, 3);
        // A complete JSON line without its newline, but not a record.
        let text = format!("{}{}", lines(&[summary(0)]), r#"{"kind":"episode","x":1}"#);
        assert_eq!(not_a_recording(&text).0, 2);
    }

    #[test]
    fn lines_of_two_unfinished_episodes_are_not_a_torn_write() {
        let text = lines(&[transition(0, 0), transition(1, 0)]);
        let (line, reason) = not_a_recording(&text);
        assert_eq!(line, 2);
        assert!(reason.contains("summary line"), "{reason}");
    }
}
