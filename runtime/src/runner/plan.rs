//! Which episodes a run plays: (task, variation, repeat) triples chosen from the bridge's
//! `env/tasks` answer.

use std::collections::BTreeSet;

use anyhow::bail;
use rand::seq::index::sample;
use rand::SeedableRng;
use stepwire_sdk::protocol::{EpisodeKey, TaskInfo};

/// How to choose episodes.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Split name; `train` when the bridge lists it, else the first split it lists.
    pub split: Option<String>,
    /// Only these tasks (in the bridge's order); all when empty.
    pub tasks: Vec<String>,
    /// Only these variation indices of each task.
    pub variations: Option<Vec<u64>>,
    /// The first K variations of each task.
    pub per_task: Option<u64>,
    /// N (task, variation) pairs sampled without replacement across the split.
    pub episodes: Option<usize>,
    /// Play every chosen pair this many times (`EpisodeKey::repeat` 0..R).
    pub repeat: u32,
    pub seed: u64,
}

/// One planned episode.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedEpisode {
    pub key: EpisodeKey,
    /// The `env/reset` seed: derived from the run seed and the key, so it does not depend on
    /// which worker plays the episode.
    pub seed: u64,
}

/// The split a selection uses.
pub fn choose_split(tasks: &[TaskInfo], wanted: Option<&str>) -> anyhow::Result<String> {
    let all: BTreeSet<&str> = tasks.iter().flat_map(|t| t.splits.iter().map(|s| s.name.as_str())).collect();
    match wanted {
        Some(w) if all.contains(w) => Ok(w.to_string()),
        Some(w) => bail!("split `{w}` is not offered by the environment; its splits: {}", join(all)),
        None if all.contains("train") => Ok("train".into()),
        None => tasks
            .iter()
            .find_map(|t| t.splits.first())
            .map(|s| s.name.clone())
            .ok_or_else(|| anyhow::anyhow!("the environment lists no tasks with splits")),
    }
}

fn join<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().collect::<Vec<_>>().join(", ")
}

/// Builds the plan in a stable order: tasks as the bridge lists them, variations ascending,
/// repeats ascending.
pub fn build(env: &str, tasks: &[TaskInfo], sel: &Selection) -> anyhow::Result<(String, Vec<PlannedEpisode>)> {
    let split = choose_split(tasks, sel.split.as_deref())?;
    for wanted in &sel.tasks {
        let Some(t) = tasks.iter().find(|t| &t.id == wanted) else {
            let known: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
            bail!("unknown task `{wanted}`; the environment offers: {}", known.join(", "));
        };
        if !t.splits.iter().any(|s| s.name == split) {
            bail!("task `{wanted}` has no `{split}` split");
        }
    }
    let mut pairs: Vec<(String, u64)> = Vec::new();
    for task in tasks {
        if !sel.tasks.is_empty() && !sel.tasks.contains(&task.id) {
            continue;
        }
        let Some(count) = task.splits.iter().find(|s| s.name == split).map(|s| s.count) else {
            continue;
        };
        let mut vars: Vec<u64> = match &sel.variations {
            Some(v) => {
                let v: Vec<u64> =
                    v.iter().copied().filter(|&i| i < count).collect::<BTreeSet<_>>().into_iter().collect();
                if v.is_empty() && sel.tasks.contains(&task.id) {
                    tracing::warn!(task = task.id, count, "none of the requested variations exist for this task");
                }
                v
            }
            None => (0..count).collect(),
        };
        if let Some(k) = sel.per_task {
            vars.truncate(usize::try_from(k).unwrap_or(usize::MAX));
        }
        pairs.extend(vars.into_iter().map(|v| (task.id.clone(), v)));
    }
    if let Some(n) = sel.episodes {
        if n < pairs.len() {
            let mut rng = rand::rngs::StdRng::seed_from_u64(sel.seed);
            let mut chosen = sample(&mut rng, pairs.len(), n).into_vec();
            chosen.sort_unstable();
            pairs = chosen.into_iter().map(|i| pairs[i].clone()).collect();
        }
    }
    if pairs.is_empty() {
        bail!("the selection is empty: no (task, variation) pairs in split `{split}` match");
    }
    let repeat = sel.repeat.max(1);
    let mut plan = Vec::with_capacity(pairs.len() * repeat as usize);
    for (task, variation) in pairs {
        for r in 0..repeat {
            let key =
                EpisodeKey { env: env.to_string(), task: task.clone(), split: split.clone(), variation, repeat: r };
            let seed = episode_seed(sel.seed, &key);
            plan.push(PlannedEpisode { key, seed });
        }
    }
    Ok((split, plan))
}

/// FNV-1a of the key's id, mixed with the run seed (splitmix64 finaliser).
pub fn episode_seed(run_seed: u64, key: &EpisodeKey) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.id().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = h ^ run_seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) >> 1 // keep it within i64 for bridges that use signed seeds
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwire_sdk::protocol::SplitInfo;

    fn tasks() -> Vec<TaskInfo> {
        let t = |id: &str, train, test| TaskInfo {
            id: id.into(),
            description: None,
            splits: vec![
                SplitInfo { name: "train".into(), count: train },
                SplitInfo { name: "test".into(), count: test },
            ],
        };
        vec![t("a", 5, 2), t("b", 3, 1)]
    }

    #[test]
    fn all_by_default_in_order() {
        let (split, plan) = build("e", &tasks(), &Selection::default()).unwrap();
        assert_eq!(split, "train");
        let ids: Vec<_> = plan.iter().map(|p| p.key.id()).collect();
        assert_eq!(ids.len(), 8);
        assert_eq!(ids[0], "e/a/train/0#0");
        assert_eq!(ids[7], "e/b/train/2#0");
    }

    #[test]
    fn filters_and_sampling() {
        let sel = Selection { tasks: vec!["b".into()], per_task: Some(2), repeat: 2, ..Default::default() };
        let (_, plan) = build("e", &tasks(), &sel).unwrap();
        let ids: Vec<_> = plan.iter().map(|p| p.key.id()).collect();
        assert_eq!(ids, ["e/b/train/0#0", "e/b/train/0#1", "e/b/train/1#0", "e/b/train/1#1"]);

        let sel = Selection { episodes: Some(3), seed: 7, ..Default::default() };
        let (_, a) = build("e", &tasks(), &sel).unwrap();
        let (_, b) = build("e", &tasks(), &sel).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 3);

        let sel = Selection { variations: Some(vec![4, 1]), split: Some("train".into()), ..Default::default() };
        let (_, plan) = build("e", &tasks(), &sel).unwrap();
        let ids: Vec<_> = plan.iter().map(|p| p.key.id()).collect();
        assert_eq!(ids, ["e/a/train/1#0", "e/a/train/4#0", "e/b/train/1#0"]);

        assert!(build("e", &tasks(), &Selection { tasks: vec!["zzz".into()], ..Default::default() }).is_err());
        assert!(build("e", &tasks(), &Selection { split: Some("dev".into()), ..Default::default() }).is_err());
    }
}
