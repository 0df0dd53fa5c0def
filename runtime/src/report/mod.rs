//! `stepwire report`: charts and tables of recorded episodes, as one self-contained HTML page plus
//! a PNG of each chart and the aggregated numbers as JSON.

pub mod charts;
pub mod html;
pub mod load;
pub mod png;
pub mod summary;

use std::path::{Path, PathBuf};

use anyhow::Context;

pub use load::{read_recording, Recording};
pub use summary::{summarise, Summary};

/// What a report wrote.
#[derive(Debug)]
pub struct Written {
    pub page: PathBuf,
    pub files: Vec<PathBuf>,
}

/// Writes `index.html`, `summary.json` and one PNG per chart into `out` (created if missing).
pub fn write_report(recordings: &[Recording], out: &Path) -> anyhow::Result<Written> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let summary = summarise(recordings);
    let charts = charts::draw_all(&summary)?;
    let sources: Vec<String> = recordings.iter().map(|r| r.path.display().to_string()).collect();
    let mut files = Vec::new();
    let page = out.join("index.html");
    write(&page, html::page(&summary, &sources, &charts))?;
    files.push(page.clone());
    let json = out.join("summary.json");
    write(&json, serde_json::to_string_pretty(&summary)? + "\n")?;
    files.push(json);
    let renderer = png::PngRenderer::new();
    for chart in &charts {
        let path = out.join(format!("{}.png", chart.id));
        renderer.write(&chart.svg, &path)?;
        files.push(path);
    }
    Ok(Written { page, files })
}

fn write(path: &Path, contents: String) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

/// Labels for recordings: the file name without `.jsonl`, or with its folder when two files share
/// a name (`a/eval.jsonl` and `b/eval.jsonl` become `a/eval` and `b/eval`).
pub fn default_labels(paths: &[PathBuf]) -> Vec<String> {
    let stem = |p: &PathBuf| p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let with_parent = |p: &PathBuf| match p.parent().and_then(|d| d.file_name()) {
        Some(dir) => format!("{}/{}", dir.to_string_lossy(), stem(p)),
        None => stem(p),
    };
    paths
        .iter()
        .map(|p| {
            let clash = paths.iter().filter(|q| stem(q) == stem(p)).count() > 1;
            if clash {
                with_parent(p)
            } else {
                stem(p)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_file_stems_unless_they_clash() {
        let paths: Vec<PathBuf> = ["x/a.jsonl", "y/eval.jsonl", "z/eval.jsonl"].iter().map(PathBuf::from).collect();
        assert_eq!(default_labels(&paths), ["a", "y/eval", "z/eval"]);
    }

    fn fixture_paths() -> Vec<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report");
        vec![dir.join("step-hrl.jsonl"), dir.join("full-history.jsonl")]
    }

    /// The hand-made fixtures are what the runtime writes: every line is a protocol `RecordLine`.
    #[test]
    fn the_fixtures_are_protocol_record_lines() {
        for path in fixture_paths() {
            for (i, line) in std::fs::read_to_string(&path).unwrap().lines().enumerate() {
                let parsed = serde_json::from_str::<stepwire_sdk::protocol::RecordLine>(line);
                assert!(parsed.is_ok(), "{}:{}: {:?}", path.display(), i + 1, parsed.err());
            }
        }
    }

    /// The aggregated numbers of a fixed, hand-made recording pair (STEP-HRL against a full-history
    /// policy), as `summary.json` holds them.
    #[test]
    fn summary_of_the_fixture_recordings() {
        let paths = fixture_paths();
        let recordings: Vec<Recording> =
            paths.iter().zip(default_labels(&paths)).map(|(p, label)| read_recording(p, label).unwrap()).collect();
        insta::assert_json_snapshot!(summarise(&recordings));
    }
}
