//! `stepwire report`: turn recordings into an HTML page of charts (plus PNGs and a JSON summary).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use crate::report;

/// Arguments of `stepwire report` (its help is the `Report` variant's doc in `cli/mod.rs`).
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Recordings (.jsonl), one per policy.
    #[arg(required = true, value_name = "RECORDING")]
    pub recordings: Vec<PathBuf>,
    /// Folder to write the report into (created if missing; files in it are overwritten).
    #[arg(long, default_value = "report")]
    pub out: PathBuf,
    /// The name each recording's policy is shown under, once per recording in the same order
    /// (default: the file name without .jsonl).
    #[arg(long = "label", value_name = "NAME")]
    pub labels: Vec<String>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    if !args.labels.is_empty() && args.labels.len() != args.recordings.len() {
        bail!(
            "{} --label given for {} recordings: give one per recording, in the same order",
            args.labels.len(),
            args.recordings.len()
        );
    }
    let labels = if args.labels.is_empty() { report::default_labels(&args.recordings) } else { args.labels.clone() };
    let mut recordings = Vec::new();
    for (path, label) in args.recordings.iter().zip(labels) {
        let recording = report::read_recording(path, label)?;
        tracing::info!(
            recording = %path.display(),
            policy = %recording.label,
            episodes = recording.episodes.len(),
            calls = recording.calls.len(),
            "read"
        );
        recordings.push(recording);
    }
    let written = report::write_report(&recordings, &args.out)?;
    for file in &written.files {
        tracing::debug!(file = %file.display(), "wrote");
    }
    println!("report written to {}", written.page.display());
    Ok(ExitCode::SUCCESS)
}
