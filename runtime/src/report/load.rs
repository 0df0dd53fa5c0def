//! Reading recordings for a report: only the fields the charts need, every other field ignored,
//! so recordings from newer runtimes (or with extra `_meta`) still load.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;
use stepwire_sdk::protocol::{EpisodeKey, EpisodeOutcome};

/// The longest piece of an offending line quoted in an error.
const QUOTE_CHARS: usize = 80;

/// The policy levels whose prompts a recording accounts for, in the order the report shows them.
pub const LEVELS: [&str; 3] = ["high", "low", "progress"];

/// One policy call: its level, the environment step it belongs to, and its prompt size.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub episode: EpisodeKey,
    pub step: u64,
    /// Index into [`LEVELS`].
    pub level: usize,
    pub prompt_tokens: u64,
}

/// How an episode ended, as its summary line says.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub key: EpisodeKey,
    pub outcome: EpisodeOutcome,
    pub score: f64,
    pub steps: u64,
}

/// What one recording file holds, under the label the report shows it as.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub label: String,
    pub path: PathBuf,
    pub calls: Vec<Call>,
    pub episodes: Vec<Episode>,
    /// Problems that did not stop the report (a torn last line, lines of unknown kinds).
    pub warnings: Vec<String>,
}

/// The fields of a record line the report reads; serde skips the rest.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LineView {
    kind: String,
    episode: Option<EpisodeKey>,
    step: Option<u64>,
    level: Option<String>,
    usage: Option<UsageView>,
    outcome: Option<EpisodeOutcome>,
    score: Option<f64>,
    steps: Option<u64>,
}

/// A transition's usage has `promptTokens`; an episode's has per-level objects (not read).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageView {
    prompt_tokens: Option<u64>,
}

/// Reads the recording at `path`.
pub fn read_recording(path: &Path, label: String) -> anyhow::Result<Recording> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut recording = parse(std::io::BufReader::new(file), path)?;
    recording.label = label;
    Ok(recording)
}

/// Parses recording lines; `path` only names the file in messages.
pub fn parse(mut reader: impl BufRead, path: &Path) -> anyhow::Result<Recording> {
    let name = path.display();
    let mut recording = Recording { path: path.to_path_buf(), ..Default::default() };
    let mut line = Vec::new();
    let (mut line_no, mut records, mut unknown_kinds) = (0usize, 0usize, 0usize);
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).with_context(|| format!("cannot read {name}"))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let complete = line.ends_with(b"\n");
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let view = match serde_json::from_str::<LineView>(text) {
            Ok(view) => view,
            // A kill mid-write leaves the last line cut short: report the rest, say which line.
            Err(_) if !complete && records > 0 => {
                let warning = format!("{name}: line {line_no} (the last) is torn, cut off mid-write; it was skipped");
                tracing::warn!("{warning}");
                recording.warnings.push(warning);
                break;
            }
            Err(e) if records == 0 => bail!(
                "{name} is not a stepwire recording: line {line_no} is not a record line ({e}): {:?}",
                quote(text)
            ),
            Err(e) => bail!("{name}: line {line_no} is not a record line ({e}): {:?}", quote(text)),
        };
        match to_record(view) {
            Ok(Some(Record::Call(call))) => recording.calls.push(call),
            Ok(Some(Record::Episode(episode))) => recording.episodes.push(episode),
            Ok(None) => {
                unknown_kinds += 1;
                continue;
            }
            Err(reason) if records == 0 => {
                bail!("{name} is not a stepwire recording: line {line_no} {reason}: {:?}", quote(text))
            }
            Err(reason) => bail!("{name}: line {line_no} {reason}: {:?}", quote(text)),
        }
        records += 1;
    }
    if line_no == 0 {
        bail!("{name} is empty: it holds no recorded episodes");
    }
    if records == 0 {
        bail!("{name} is not a stepwire recording: none of its {line_no} lines is a transition or an episode");
    }
    if recording.episodes.is_empty() {
        let warning = format!(
            "{name}: no episode finished (no `episode` line): it adds nothing to the success, score and step charts"
        );
        tracing::warn!("{warning}");
        recording.warnings.push(warning);
    }
    if unknown_kinds > 0 {
        let warning = format!("{name}: skipped {unknown_kinds} lines of a kind this runtime does not know");
        tracing::warn!("{warning}");
        recording.warnings.push(warning);
    }
    Ok(recording)
}

enum Record {
    Call(Call),
    Episode(Episode),
}

/// Checks a line has what its kind needs; `Ok(None)` for a kind this runtime does not know.
fn to_record(view: LineView) -> Result<Option<Record>, String> {
    let missing = |field: &str| format!("is a {} line without `{field}`", view.kind);
    let episode = || view.episode.clone().ok_or_else(|| missing("episode"));
    match view.kind.as_str() {
        "transition" => {
            let level = view.level.as_deref().ok_or_else(|| missing("level"))?;
            let level = LEVELS
                .iter()
                .position(|l| *l == level)
                .ok_or_else(|| format!("has an unknown level {level:?} (expected high, low or progress)"))?;
            let usage = view.usage.as_ref().ok_or_else(|| missing("usage"))?;
            Ok(Some(Record::Call(Call {
                episode: episode()?,
                step: view.step.ok_or_else(|| missing("step"))?,
                level,
                prompt_tokens: usage.prompt_tokens.ok_or_else(|| missing("usage.promptTokens"))?,
            })))
        }
        "episode" => Ok(Some(Record::Episode(Episode {
            key: episode()?,
            outcome: view.outcome.ok_or_else(|| missing("outcome"))?,
            score: view.score.ok_or_else(|| missing("score"))?,
            steps: view.steps.ok_or_else(|| missing("steps"))?,
        }))),
        _ => Ok(None),
    }
}

fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> anyhow::Result<Recording> {
        parse(text.as_bytes(), Path::new("r.jsonl"))
    }

    const EPISODE: &str = r#"{"kind":"episode","episode":{"env":"e","task":"t","split":"test","variation":0},"outcome":"won","score":1.0,"steps":3,"extra":{"ignored":true}}"#;

    #[test]
    fn reads_episodes_and_ignores_unknown_fields() {
        let r = parse_str(&format!("{EPISODE}\n")).unwrap();
        assert_eq!(r.episodes.len(), 1);
        assert_eq!(r.episodes[0].steps, 3);
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn empty_file_is_refused() {
        let e = parse_str("").unwrap_err().to_string();
        assert!(e.contains("is empty"), "{e}");
    }

    #[test]
    fn other_json_is_not_a_recording() {
        let e = parse_str("{\"hello\":1}\n").unwrap_err().to_string();
        assert!(e.contains("not a stepwire recording: line 1"), "{e}");
        let e = parse_str("name,score\n").unwrap_err().to_string();
        assert!(e.contains("not a stepwire recording: line 1"), "{e}");
    }

    #[test]
    fn torn_last_line_is_skipped_and_named() {
        let r = parse_str(&format!("{EPISODE}\n{EPISODE}\n{}", &EPISODE[..40])).unwrap();
        assert_eq!(r.episodes.len(), 2);
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].contains("line 3"), "{:?}", r.warnings);
    }

    #[test]
    fn a_bad_line_in_the_middle_is_an_error_naming_it() {
        let e = parse_str(&format!("{EPISODE}\nnot json\n{EPISODE}\n")).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn a_recording_without_finished_episodes_is_read_with_a_warning() {
        let line = r#"{"kind":"transition","episode":{"env":"e","task":"t","split":"s","variation":0},"step":2,"level":"low","usage":{"promptTokens":7}}"#;
        let r = parse_str(&format!("{line}\n")).unwrap();
        assert_eq!(r.calls[0].step, 2);
        assert_eq!(r.calls[0].prompt_tokens, 7);
        assert!(r.warnings[0].contains("no episode finished"), "{:?}", r.warnings);
    }

    #[test]
    fn a_transition_needs_its_usage() {
        let line = r#"{"kind":"transition","episode":{"env":"e","task":"t","split":"s","variation":0},"step":0,"level":"low"}"#;
        let e = parse_str(&format!("{EPISODE}\n{line}\n")).unwrap_err().to_string();
        assert!(e.contains("line 2 is a transition line without `usage`"), "{e}");
    }
}
