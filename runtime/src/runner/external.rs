//! Runs driven from outside, e.g. by the Ray driver `python -m stepwire_cluster`: the plan as
//! JSON (`--print-plan`), a run narrowed to some planned episodes (`--only-episodes`), and a
//! report of a recording that others wrote (`--report-from`). The planner, the recording's
//! resume rules and the report stay here, in one place; a driver only moves episodes around.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::plan::PlannedEpisode;

/// What the run does with its plan.
#[derive(Debug, Clone, Default)]
pub enum RunMode {
    /// Play every planned episode the recording lacks.
    #[default]
    Play,
    /// Print the plan and play nothing.
    PrintPlan,
    /// Play nothing: report the recording's episodes, some of them played by others in this run.
    Report(ExternalReport),
}

/// One planned episode as `--print-plan` lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedEpisode {
    pub id: String,
    pub task: String,
    pub variation: u64,
    pub repeat: u32,
    /// Its env/reset seed.
    pub seed: u64,
    /// The recording already holds its summary (`--resume`): a run skips it.
    pub recorded: bool,
}

/// The output of `--print-plan`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanListing {
    pub env: String,
    pub split: String,
    pub planned: usize,
    pub already_recorded: usize,
    /// The recording the run appends to (created, or resumed with its torn tail cut).
    pub record: Option<PathBuf>,
    pub episodes: Vec<ListedEpisode>,
}

impl PlanListing {
    pub fn new(env: &str, split: &str, plan: &[PlannedEpisode], recorded: &[bool], record: Option<PathBuf>) -> Self {
        let episodes: Vec<ListedEpisode> = plan
            .iter()
            .zip(recorded)
            .map(|(p, &recorded)| ListedEpisode {
                id: p.key.id(),
                task: p.key.task.clone(),
                variation: p.key.variation,
                repeat: p.key.repeat,
                seed: p.seed,
                recorded,
            })
            .collect();
        PlanListing {
            env: env.to_string(),
            split: split.to_string(),
            planned: plan.len(),
            already_recorded: episodes.iter().filter(|e| e.recorded).count(),
            record,
            episodes,
        }
    }
}

/// What a driver tells `--report-from`: the episodes it recorded in this run, and how it went.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalReport {
    /// `EpisodeKey::id()` of each episode played (and recorded) in this run, not resumed.
    #[serde(default)]
    pub played: Vec<String>,
    /// The driver's wall-clock time for the run.
    pub wall_seconds: f64,
    /// The driver was stopped before the plan was done.
    #[serde(default)]
    pub interrupted: bool,
}

impl ExternalReport {
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let report: ExternalReport = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a --report-from file ({{\"played\": [episode ids], \"wallSeconds\": S, \
                 \"interrupted\": false}})",
                path.display()
            )
        })?;
        if !report.wall_seconds.is_finite() || report.wall_seconds < 0.0 {
            anyhow::bail!("{}: wallSeconds must be a number >= 0", path.display());
        }
        Ok(report)
    }
}

/// Reads `--only-episodes`: episode ids, one a line (blank lines and `#` comments skipped).
pub fn read_episode_ids(path: &Path) -> anyhow::Result<HashSet<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let ids: HashSet<String> =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect();
    if ids.is_empty() {
        anyhow::bail!("{} lists no episode ids", path.display());
    }
    Ok(ids)
}

/// Narrows the plan to `only`, keeping its order; every id must be in the plan (a typo or a
/// plan built from other arguments must not pass silently).
pub fn narrow(plan: Vec<PlannedEpisode>, only: &HashSet<String>) -> anyhow::Result<Vec<PlannedEpisode>> {
    let planned: HashSet<String> = plan.iter().map(|p| p.key.id()).collect();
    let mut missing: Vec<&str> = only.iter().filter(|id| !planned.contains(*id)).map(String::as_str).collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        let shown = missing.iter().take(5).copied().collect::<Vec<_>>().join(", ");
        anyhow::bail!(
            "--only-episodes names {} episode(s) that are not in this run's plan (same arguments as \
             --print-plan?): {shown}",
            missing.len()
        );
    }
    Ok(plan.into_iter().filter(|p| only.contains(&p.key.id())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwire_sdk::protocol::EpisodeKey;

    fn planned(variation: u64) -> PlannedEpisode {
        let key = EpisodeKey { env: "e".into(), task: "t".into(), split: "train".into(), variation, repeat: 0 };
        PlannedEpisode { seed: super::super::plan::episode_seed(0, &key), key }
    }

    #[test]
    fn narrowing_keeps_plan_order_and_refuses_strangers() {
        let plan: Vec<_> = (0..4).map(planned).collect();
        let only: HashSet<String> = ["e/t/train/3#0".to_string(), "e/t/train/1#0".to_string()].into();
        let ids: Vec<String> = narrow(plan.clone(), &only).unwrap().iter().map(|p| p.key.id()).collect();
        assert_eq!(ids, ["e/t/train/1#0", "e/t/train/3#0"]);
        let only: HashSet<String> = ["e/t/train/9#0".to_string()].into();
        let err = narrow(plan, &only).unwrap_err().to_string();
        assert!(err.contains("e/t/train/9#0"), "{err}");
    }

    #[test]
    fn listing_counts_recorded_episodes() {
        let plan: Vec<_> = (0..3).map(planned).collect();
        let l = PlanListing::new("e", "train", &plan, &[true, false, true], None);
        assert_eq!((l.planned, l.already_recorded), (3, 2));
        let json = serde_json::to_value(&l).unwrap();
        assert_eq!(json["episodes"][1]["id"], "e/t/train/1#0");
        assert_eq!(json["episodes"][1]["recorded"], false);
        assert_eq!(json["alreadyRecorded"], 2);
    }

    #[test]
    fn report_files_are_checked() {
        let dir = std::env::temp_dir().join(format!("stepwire-external-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.json");
        std::fs::write(&good, r#"{"played": ["e/t/train/0#0"], "wallSeconds": 1.5}"#).unwrap();
        let r = ExternalReport::read(&good).unwrap();
        assert_eq!(r.played, ["e/t/train/0#0"]);
        assert!(!r.interrupted);
        let bad = dir.join("bad.json");
        std::fs::write(&bad, r#"{"played": [], "wallSeconds": 1, "extra": 1}"#).unwrap();
        assert!(ExternalReport::read(&bad).is_err());
        std::fs::write(&bad, r#"{"wallSeconds": -1}"#).unwrap();
        assert!(ExternalReport::read(&bad).is_err());
        let ids = dir.join("ids.txt");
        std::fs::write(&ids, "# ids\ne/t/train/0#0\n\n").unwrap();
        assert_eq!(read_episode_ids(&ids).unwrap().len(), 1);
        std::fs::write(&ids, "\n").unwrap();
        assert!(read_episode_ids(&ids).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
