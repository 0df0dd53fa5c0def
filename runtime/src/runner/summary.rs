//! The end-of-run report: totals, per-task rows and failures grouped by reason; printed as a
//! table or as JSON (`--json`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use stepwire_sdk::protocol::{EpisodeOutcome, EpisodeSummary, RoleUsage};

/// Aggregates over a set of episodes.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub episodes: usize,
    pub won: usize,
    pub lost: usize,
    pub truncated: usize,
    pub failed: usize,
    /// Won episodes over all episodes (failed ones included).
    pub success_rate: f64,
    pub mean_score: f64,
    pub mean_steps: f64,
    /// Environment time per step (reset, step, admissible and expert calls), milliseconds.
    pub env_ms_per_step: f64,
    /// Policy time per step, milliseconds.
    pub agent_ms_per_step: f64,
    pub usage: RoleUsage,
}

impl Totals {
    fn of<'a>(episodes: impl IntoIterator<Item = &'a EpisodeSummary>) -> Totals {
        let mut t = Totals::default();
        let (mut score, mut steps, mut env_s, mut agent_s) = (0.0, 0u64, 0.0, 0.0);
        for e in episodes {
            t.episodes += 1;
            match e.outcome {
                EpisodeOutcome::Won => t.won += 1,
                EpisodeOutcome::Lost => t.lost += 1,
                EpisodeOutcome::Truncated => t.truncated += 1,
                EpisodeOutcome::Failed => t.failed += 1,
            }
            score += e.score;
            steps += e.steps;
            env_s += e.env_seconds;
            agent_s += e.agent_seconds;
            t.usage.add(e.usage.total());
        }
        if t.episodes > 0 {
            let n = t.episodes as f64;
            t.success_rate = t.won as f64 / n;
            t.mean_score = score / n;
            t.mean_steps = steps as f64 / n;
        }
        if steps > 0 {
            t.env_ms_per_step = env_s * 1000.0 / steps as f64;
            t.agent_ms_per_step = agent_s * 1000.0 / steps as f64;
        }
        t
    }
}

/// One task's row.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskRow {
    pub task: String,
    #[serde(flatten)]
    pub totals: Totals,
}

/// Failed episodes sharing a reason (its first line).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FailureGroup {
    pub reason: String,
    pub count: usize,
    /// `EpisodeKey::id()` of each.
    pub episodes: Vec<String>,
}

/// One episode's result, in plan order.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EpisodeRow {
    pub id: String,
    pub task: String,
    pub variation: u64,
    pub repeat: u32,
    pub outcome: EpisodeOutcome,
    pub score: f64,
    pub steps: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Read from the recording by `--resume` rather than played in this run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub env: String,
    pub split: String,
    pub policy: String,
    /// Episodes in the plan.
    pub planned: usize,
    /// Summaries taken from the recording by `--resume`.
    pub resumed: usize,
    /// Planned episodes without a result (the run was interrupted or its bridges would not start).
    pub not_run: usize,
    pub interrupted: bool,
    pub wall_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(flatten)]
    pub totals: Totals,
    pub failures: Vec<FailureGroup>,
    pub tasks: Vec<TaskRow>,
    pub episode_results: Vec<EpisodeRow>,
}

/// What the report is built from.
pub struct ReportInput<'a> {
    pub env: &'a str,
    pub split: &'a str,
    pub policy: &'a str,
    pub planned: usize,
    pub interrupted: bool,
    pub wall_seconds: f64,
    pub record: Option<String>,
    /// Results in plan order, each flagged when it came from the recording.
    pub results: Vec<(&'a EpisodeSummary, bool)>,
}

impl RunSummary {
    pub fn build(input: ReportInput<'_>) -> RunSummary {
        let all: Vec<&EpisodeSummary> = input.results.iter().map(|(s, _)| *s).collect();
        let mut by_task: BTreeMap<&str, Vec<&EpisodeSummary>> = BTreeMap::new();
        let mut task_order: Vec<&str> = Vec::new();
        let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &all {
            let task = s.episode.task.as_str();
            if !by_task.contains_key(task) {
                task_order.push(task);
            }
            by_task.entry(task).or_default().push(s);
            if s.outcome == EpisodeOutcome::Failed {
                failures.entry(failure_reason(s.failure.as_deref())).or_default().push(s.episode.id());
            }
        }
        let mut failures: Vec<FailureGroup> = failures
            .into_iter()
            .map(|(reason, episodes)| FailureGroup { reason, count: episodes.len(), episodes })
            .collect();
        failures.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
        RunSummary {
            env: input.env.to_string(),
            split: input.split.to_string(),
            policy: input.policy.to_string(),
            planned: input.planned,
            resumed: input.results.iter().filter(|(_, r)| *r).count(),
            not_run: input.planned.saturating_sub(all.len()),
            interrupted: input.interrupted,
            wall_seconds: input.wall_seconds,
            record: input.record,
            totals: Totals::of(all.iter().copied()),
            failures,
            tasks: task_order
                .into_iter()
                .map(|t| TaskRow { task: t.to_string(), totals: Totals::of(by_task[t].iter().copied()) })
                .collect(),
            episode_results: input
                .results
                .iter()
                .map(|(s, resumed)| EpisodeRow {
                    id: s.episode.id(),
                    task: s.episode.task.clone(),
                    variation: s.episode.variation,
                    repeat: s.episode.repeat,
                    outcome: s.outcome,
                    score: s.score,
                    steps: s.steps,
                    failure: s.failure.clone(),
                    resumed: *resumed,
                })
                .collect(),
        }
    }

    /// The human-readable report.
    pub fn table(&self) -> String {
        let t = &self.totals;
        let mut out = String::new();
        let _ = writeln!(out, "stepwire run: env {} | split {} | policy {}", self.env, self.split, self.policy);
        let mut status = format!(
            "{} of {} planned episodes have results ({} resumed from the recording) in {:.1} s",
            t.episodes, self.planned, self.resumed, self.wall_seconds
        );
        if self.interrupted {
            status.push_str("; INTERRUPTED");
        }
        if self.not_run > 0 {
            let _ = write!(status, "; {} not run", self.not_run);
        }
        let _ = writeln!(out, "{status}");
        if let Some(r) = &self.record {
            let _ = writeln!(out, "recording: {r}");
        }
        let _ = writeln!(out);
        let header = [
            "task",
            "episodes",
            "won",
            "lost",
            "trunc",
            "failed",
            "success",
            "score",
            "steps",
            "env ms/step",
            "agent ms/step",
        ];
        let mut rows: Vec<[String; 11]> = self.tasks.iter().map(|r| row(&r.task, &r.totals)).collect();
        rows.push(row("ALL", t));
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r.iter()) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            let mut s = String::new();
            for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
                if i == 0 {
                    let _ = write!(s, "{c:<w$}");
                } else {
                    let _ = write!(s, "  {c:>w$}");
                }
            }
            s.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(&header.map(String::from)));
        let rule: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
        for (i, r) in rows.iter().enumerate() {
            if i + 1 == rows.len() {
                let _ = writeln!(out, "{}", "-".repeat(rule));
            }
            let _ = writeln!(out, "{}", line(r));
        }
        if !self.failures.is_empty() {
            let _ = writeln!(out, "\nfailures:");
            for f in &self.failures {
                let shown: Vec<&str> = f.episodes.iter().take(5).map(String::as_str).collect();
                let more =
                    if f.episodes.len() > 5 { format!(", ... {} more", f.episodes.len() - 5) } else { String::new() };
                let _ = writeln!(out, "  {:>4} x {}  [{}{more}]", f.count, f.reason, shown.join(", "));
            }
        }
        out
    }
}

fn row(name: &str, t: &Totals) -> [String; 11] {
    [
        name.to_string(),
        t.episodes.to_string(),
        t.won.to_string(),
        t.lost.to_string(),
        t.truncated.to_string(),
        t.failed.to_string(),
        format!("{:.1}%", t.success_rate * 100.0),
        format!("{:.2}", t.mean_score),
        format!("{:.1}", t.mean_steps),
        format!("{:.2}", t.env_ms_per_step),
        format!("{:.2}", t.agent_ms_per_step),
    ]
}

/// A failure's grouping key: its first line, without the volatile parts (pids, durations).
pub fn failure_reason(failure: Option<&str>) -> String {
    let first = failure.unwrap_or("unknown").lines().next().unwrap_or("unknown").trim();
    let mut out = String::with_capacity(first.len());
    let mut chars = first.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars.peek().is_some_and(|c| c.is_ascii_digit() || *c == '.') {
                chars.next();
            }
            out.push('N');
        } else {
            out.push(c);
        }
    }
    if out.chars().count() > 160 {
        out = out.chars().take(157).collect::<String>() + "...";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_reasons_group_without_numbers() {
        assert_eq!(
            failure_reason(Some("step: bridge `x` is gone (eof; exit status: 3)\nstderr")),
            "step: bridge `x` is gone (eof; exit status: N)"
        );
        assert_eq!(failure_reason(None), "unknown");
    }
}
