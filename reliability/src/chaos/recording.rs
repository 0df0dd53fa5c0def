//! Reading a recording as the chaos checks need it: which episodes have their summary line,
//! whether any is there twice, and whether the file is a sequence of whole episodes.

use std::collections::BTreeMap;
use std::path::Path;

use stepwire_sdk::protocol::{EpisodeOutcome, RecordLine};

/// What a recording holds.
#[derive(Debug, Default, Clone)]
pub struct Contents {
    /// The episode id of every summary line, in file order.
    pub summaries: Vec<String>,
    /// The failure reasons of the failed episodes.
    pub failures: Vec<String>,
    /// Bytes after the last summary line (a torn last episode, which `--resume` cuts).
    pub unfinished_tail: bool,
    /// The first line that breaks the format, if any: not a record, or episodes interleaved.
    pub problem: Option<String>,
    pub bytes: u64,
}

impl Contents {
    /// Ids whose summary appears more than once.
    pub fn duplicates(&self) -> Vec<String> {
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for id in &self.summaries {
            *count.entry(id).or_default() += 1;
        }
        count.into_iter().filter(|(_, n)| *n > 1).map(|(id, n)| format!("{id} x{n}")).collect()
    }

    /// Only whole, valid episodes.
    pub fn whole(&self) -> bool {
        self.problem.is_none() && !self.unfinished_tail
    }
}

/// Reads the recording at `path`; a missing file is an empty recording.
pub fn read(path: &Path) -> std::io::Result<Contents> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(parse(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Contents::default()),
        Err(e) => Err(e),
    }
}

pub fn parse(bytes: &[u8]) -> Contents {
    let mut c = Contents { bytes: bytes.len() as u64, ..Default::default() };
    let mut open: Option<String> = None;
    let mut rest = bytes;
    let mut line_no = 0;
    while !rest.is_empty() {
        line_no += 1;
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            c.unfinished_tail = true; // a last line without its newline
            break;
        };
        let line = &rest[..end];
        rest = &rest[end + 1..];
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = match serde_json::from_slice::<RecordLine>(line) {
            Ok(r) => r,
            Err(e) => {
                c.problem.get_or_insert(format!("line {line_no} is not a record line: {e}"));
                continue;
            }
        };
        let (id, summary) = match &record {
            RecordLine::Transition(t) => (t.episode.id(), None),
            RecordLine::Episode(s) => (s.episode.id(), Some(s)),
        };
        if let Some(other) = open.as_ref().filter(|o| **o != id) {
            c.problem.get_or_insert(format!("line {line_no}: episode {id} inside episode {other}"));
        }
        match summary {
            Some(s) => {
                if s.outcome == EpisodeOutcome::Failed {
                    c.failures.push(s.failure.clone().unwrap_or_default());
                }
                c.summaries.push(id);
                open = None;
            }
            None => open = Some(id),
        }
    }
    c.unfinished_tail |= open.is_some();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    use stepwire_sdk::protocol::{EpisodeKey, EpisodeSummary};

    fn summary(variation: u64) -> String {
        let episode = EpisodeKey { env: "e".into(), task: "t".into(), split: "train".into(), variation, repeat: 0 };
        let won = EpisodeSummary::new(episode, "d", EpisodeOutcome::Won);
        serde_json::to_string(&RecordLine::Episode(EpisodeSummary { score: 1.0, steps: 1, ..won })).unwrap()
    }

    #[test]
    fn summaries_duplicates_and_torn_tails() {
        let one = summary(1);
        let two = summary(2);
        let text = format!("{one}\n{two}\n{one}\n");
        let c = parse(text.as_bytes());
        assert_eq!(c.problem, None, "{c:?}");
        assert_eq!(c.summaries.len(), 3);
        assert_eq!(c.duplicates(), vec!["e/t/train/1#0 x2".to_string()]);
        assert!(c.whole());
        let torn = parse(format!("{one}\n{}", &two[..20]).as_bytes());
        assert!(torn.unfinished_tail && torn.problem.is_none() && !torn.whole());
        let bad = parse(format!("{one}\nhello\n").as_bytes());
        assert!(bad.problem.is_some_and(|p| p.contains("line 2")));
    }
}
