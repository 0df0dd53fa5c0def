//! The numbers a report shows, aggregated from recordings: success per task and split, score and
//! step distributions, and prompt tokens per step for each policy level.

use std::collections::BTreeMap;

use serde::Serialize;
use stepwire_sdk::protocol::EpisodeOutcome;

use super::load::{Recording, LEVELS};

/// Everything the report draws, one entry per recording (policy), in the order given.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub policies: Vec<PolicySummary>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySummary {
    pub label: String,
    pub episodes: usize,
    pub won: usize,
    pub success_rate: f64,
    pub calls: usize,
    /// Per (task, split), sorted by task then split.
    pub tasks: Vec<TaskSummary>,
    /// Steps of each episode, sorted.
    pub steps_per_episode: Vec<u64>,
    pub steps: Option<Distribution>,
    /// One series per level whose calls used prompt tokens.
    pub prompt_tokens: Vec<TokenSeries>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSummary {
    pub task: String,
    pub split: String,
    pub episodes: usize,
    pub won: usize,
    pub lost: usize,
    pub truncated: usize,
    pub failed: usize,
    pub success_rate: f64,
    pub score: Distribution,
}

/// Five-number summary plus mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Distribution {
    pub min: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub max: f64,
    pub mean: f64,
}

/// Mean prompt tokens of one level's calls at each environment step.
#[derive(Debug, Clone, Serialize)]
pub struct TokenSeries {
    pub level: String,
    pub points: Vec<TokenPoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenPoint {
    pub step: u64,
    pub calls: usize,
    pub mean_prompt_tokens: f64,
}

pub fn summarise(recordings: &[Recording]) -> Summary {
    Summary { policies: recordings.iter().map(summarise_one).collect() }
}

fn summarise_one(recording: &Recording) -> PolicySummary {
    let mut by_task: BTreeMap<(String, String), Vec<&super::load::Episode>> = BTreeMap::new();
    for e in &recording.episodes {
        by_task.entry((e.key.task.clone(), e.key.split.clone())).or_default().push(e);
    }
    let tasks = by_task
        .into_iter()
        .map(|((task, split), episodes)| {
            let count = |o: EpisodeOutcome| episodes.iter().filter(|e| e.outcome == o).count();
            let won = count(EpisodeOutcome::Won);
            let scores: Vec<f64> = episodes.iter().map(|e| e.score).collect();
            TaskSummary {
                task,
                split,
                episodes: episodes.len(),
                won,
                lost: count(EpisodeOutcome::Lost),
                truncated: count(EpisodeOutcome::Truncated),
                failed: count(EpisodeOutcome::Failed),
                success_rate: won as f64 / episodes.len() as f64,
                score: distribution(&scores).expect("a task has at least one episode"),
            }
        })
        .collect();
    let won = recording.episodes.iter().filter(|e| e.outcome == EpisodeOutcome::Won).count();
    let mut steps_per_episode: Vec<u64> = recording.episodes.iter().map(|e| e.steps).collect();
    steps_per_episode.sort_unstable();
    let steps_f: Vec<f64> = steps_per_episode.iter().map(|&s| s as f64).collect();
    PolicySummary {
        label: recording.label.clone(),
        episodes: recording.episodes.len(),
        won,
        success_rate: if recording.episodes.is_empty() { 0.0 } else { won as f64 / recording.episodes.len() as f64 },
        calls: recording.calls.len(),
        tasks,
        steps: distribution(&steps_f),
        steps_per_episode,
        prompt_tokens: token_series(recording),
        warnings: recording.warnings.clone(),
    }
}

/// Per level, the mean prompt of the calls made at each step. Calls with no prompt tokens are left
/// out: a level that did not run reports zeros (an expert, a rule-based progress module).
fn token_series(recording: &Recording) -> Vec<TokenSeries> {
    let mut sums: Vec<BTreeMap<u64, (usize, u64)>> = vec![BTreeMap::new(); LEVELS.len()];
    for call in recording.calls.iter().filter(|c| c.prompt_tokens > 0) {
        let entry = sums[call.level].entry(call.step).or_default();
        entry.0 += 1;
        entry.1 += call.prompt_tokens;
    }
    LEVELS
        .iter()
        .zip(sums)
        .filter(|(_, by_step)| !by_step.is_empty())
        .map(|(level, by_step)| TokenSeries {
            level: level.to_string(),
            points: by_step
                .into_iter()
                .map(|(step, (calls, tokens))| TokenPoint {
                    step,
                    calls,
                    mean_prompt_tokens: tokens as f64 / calls as f64,
                })
                .collect(),
        })
        .collect()
}

/// Quartiles by linear interpolation between the closest ranks; `None` for no values.
pub fn distribution(values: &[f64]) -> Option<Distribution> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let pos = q * (v.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
    };
    Some(Distribution {
        min: v[0],
        q1: at(0.25),
        median: at(0.5),
        q3: at(0.75),
        max: v[v.len() - 1],
        mean: v.iter().sum::<f64>() / v.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::report::load::parse;

    fn episode(task: &str, split: &str, variation: u64, outcome: &str, score: f64, steps: u64) -> String {
        format!(
            r#"{{"kind":"episode","episode":{{"env":"e","task":"{task}","split":"{split}","variation":{variation}}},"outcome":"{outcome}","score":{score},"steps":{steps}}}"#
        )
    }

    fn call(variation: u64, step: u64, level: &str, prompt: u64) -> String {
        format!(
            r#"{{"kind":"transition","episode":{{"env":"e","task":"a","split":"test","variation":{variation}}},"step":{step},"level":"{level}","usage":{{"promptTokens":{prompt},"cachedTokens":0,"completionTokens":2}}}}"#
        )
    }

    fn recording(lines: &[String]) -> Recording {
        let mut text = lines.join("\n");
        text.push('\n');
        let mut r = parse(text.as_bytes(), Path::new("hand.jsonl")).unwrap();
        r.label = "hand".into();
        r
    }

    #[test]
    fn success_is_counted_per_task_and_split() {
        let r = recording(&[
            episode("a", "test", 0, "won", 100.0, 5),
            episode("a", "test", 1, "lost", -100.0, 9),
            episode("a", "dev", 0, "won", 100.0, 4),
            episode("b", "test", 0, "truncated", 20.0, 30),
            episode("b", "test", 1, "failed", 0.0, 1),
        ]);
        let s = summarise(std::slice::from_ref(&r));
        let p = &s.policies[0];
        assert_eq!((p.episodes, p.won), (5, 2));
        let rows: Vec<_> = p.tasks.iter().map(|t| (t.task.as_str(), t.split.as_str(), t.episodes, t.won)).collect();
        assert_eq!(rows, [("a", "dev", 1, 1), ("a", "test", 2, 1), ("b", "test", 2, 0)]);
        assert_eq!(p.tasks[1].success_rate, 0.5);
        assert_eq!((p.tasks[2].truncated, p.tasks[2].failed), (1, 1));
        assert_eq!(p.tasks[1].score.median, 0.0);
        assert_eq!(p.steps_per_episode, [1, 4, 5, 9, 30]);
        assert_eq!(p.steps.unwrap().median, 5.0);
    }

    #[test]
    fn token_series_average_each_step_and_skip_levels_that_did_not_run() {
        let r = recording(&[
            call(0, 0, "high", 100),
            call(0, 0, "low", 200),
            call(0, 0, "progress", 0),
            call(0, 1, "low", 300),
            call(1, 0, "low", 400),
            call(1, 1, "low", 0),
        ]);
        let s = summarise(std::slice::from_ref(&r));
        let series = &s.policies[0].prompt_tokens;
        let levels: Vec<_> = series.iter().map(|s| s.level.as_str()).collect();
        assert_eq!(levels, ["high", "low"]);
        let low: Vec<_> = series[1].points.iter().map(|p| (p.step, p.calls, p.mean_prompt_tokens)).collect();
        assert_eq!(low, [(0, 2, 300.0), (1, 1, 300.0)]);
    }

    #[test]
    fn quartiles_interpolate() {
        let d = distribution(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((d.min, d.q1, d.median, d.q3, d.max, d.mean), (1.0, 1.75, 2.5, 3.25, 4.0, 2.5));
        assert!(distribution(&[]).is_none());
    }
}
