//! Rule-based policies: no model, deterministic. The high level hands out the task itself as the
//! only subtask; the progress module keeps the last few actions and the latest observation's
//! first sentence. Used with the environment's expert to record demonstrations, and as a
//! baseline a model must beat. Also the deterministic stand-ins a model policy's manifest can
//! name for a role: the progress tracker that labels demonstrations, no progress at all, and the
//! whole history (with the whole-task planner, the flat full-history baseline).

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::policy::{HighLevelPolicy, PolicyError, ProgressPolicy};
use crate::protocol::{Observation, PlanParams, PlanResult, ProgressUpdateParams, ProgressUpdateResult, Usage};

/// Plans the task itself as one subtask (then "continue: <task>" if it is ever marked done).
#[derive(Debug, Default, Clone)]
pub struct WholeTaskPlanner;

#[async_trait]
impl HighLevelPolicy for WholeTaskPlanner {
    async fn plan(&self, p: &PlanParams, _: &CancellationToken) -> Result<PlanResult, PolicyError> {
        let task = p.task.lines().next().unwrap_or_default().trim().to_string();
        let subtask = if p.completed_subtasks.is_empty() { task } else { format!("continue: {task}") };
        Ok(PlanResult { subtask, usage: Usage::default() })
    }
}

/// Keeps the last `window` actions and what the latest one led to, in one short line.
#[derive(Debug, Clone)]
pub struct RecentActionsProgress {
    pub window: usize,
}

impl Default for RecentActionsProgress {
    fn default() -> Self {
        RecentActionsProgress { window: 3 }
    }
}

#[async_trait]
impl ProgressPolicy for RecentActionsProgress {
    async fn update(
        &self,
        p: &ProgressUpdateParams,
        _: &CancellationToken,
    ) -> Result<ProgressUpdateResult, PolicyError> {
        let previous = p.previous_progress.split(" | result: ").next().unwrap_or_default();
        let mut actions: Vec<&str> =
            previous.strip_prefix("did: ").map(|s| s.split("; ").collect()).unwrap_or_default();
        actions.push(&p.action);
        let keep = actions.len().saturating_sub(self.window);
        let first_sentence = p.observation.text.trim().split_inclusive(['.', '\n']).next().unwrap_or("").trim();
        let progress = format!("did: {} | result: {first_sentence}", actions[keep..].join("; "));
        Ok(ProgressUpdateResult { progress, usage: Usage::default() })
    }
}

/// Writes no local progress at all: the ablation "STEP-HRL without local progress", whose levels
/// see only the subtask and the current observation.
#[derive(Debug, Default, Clone)]
pub struct NoProgress;

#[async_trait]
impl ProgressPolicy for NoProgress {
    async fn update(
        &self,
        _: &ProgressUpdateParams,
        _: &CancellationToken,
    ) -> Result<ProgressUpdateResult, PolicyError> {
        Ok(ProgressUpdateResult { progress: String::new(), usage: Usage::default() })
    }
}

/// Every action of the subtask and the text it led to, appended without bound
/// (`> go to desk 1\nYou arrive at desk 1. ...`): with [`WholeTaskPlanner`], the prompt of a flat
/// full-history policy, the baseline STEP-HRL's compact prompts are measured against. Only the
/// observation's text is kept; its parts describe the present, which the prompt shows anyway.
#[derive(Debug, Default, Clone)]
pub struct HistoryProgress;

impl HistoryProgress {
    pub fn append(previous: &str, action: &str, observation: &str) -> String {
        let entry = format!("> {}\n{}", action.trim(), observation.trim());
        if previous.is_empty() {
            entry
        } else {
            format!("{previous}\n{entry}")
        }
    }

    /// The history without its oldest entry, or `None` when one entry (or none) is left: a
    /// history that outgrows a model's window keeps its newest entries.
    pub fn drop_oldest(history: &str) -> Option<&str> {
        let cut = history.find("\n> ")?;
        Some(&history[cut + 1..])
    }
}

#[async_trait]
impl ProgressPolicy for HistoryProgress {
    async fn update(
        &self,
        p: &ProgressUpdateParams,
        _: &CancellationToken,
    ) -> Result<ProgressUpdateResult, PolicyError> {
        let progress = Self::append(&p.previous_progress, &p.action, &p.observation.text);
        Ok(ProgressUpdateResult { progress, usage: Usage::default() })
    }
}

/// Takes the first admissible action that is not a look/inventory/help command (so the agent
/// moves), or `look` when the host gave no list. Says the subtask is done when the environment's
/// latest text reports success. A deterministic low level for smoke runs and protocol tests.
#[derive(Debug, Default, Clone)]
pub struct FirstAdmissibleActor;

#[async_trait]
impl crate::policy::LowLevelPolicy for FirstAdmissibleActor {
    async fn act(
        &self,
        p: &crate::protocol::ActParams,
        _: &CancellationToken,
    ) -> Result<crate::protocol::ActResult, PolicyError> {
        const PASSIVE: [&str; 5] = ["look", "inventory", "help", "wait", "examine"];
        let action = match &p.admissible_actions {
            Some(list) if list.is_empty() => {
                return Err(PolicyError::InvalidInput("admissibleActions is empty".into()))
            }
            Some(list) => list.iter().find(|a| !PASSIVE.iter().any(|w| a.starts_with(w))).unwrap_or(&list[0]).clone(),
            None => "look".to_string(),
        };
        let text = p.observation.text.to_lowercase();
        let subtask_done = text.contains("you won") || text.contains("task completed");
        Ok(crate::protocol::ActResult { action, subtask_done, usage: Usage::default() })
    }
}

/// Takes an admissible action uniformly at random, drawn from the step's sampling seed (the
/// controller gives every step its own, so a run repeats exactly): the random baseline a trained
/// policy's scores are read against. `look` when the host gave no list; never says done.
#[derive(Debug, Default, Clone)]
pub struct RandomAdmissibleActor;

#[async_trait]
impl crate::policy::LowLevelPolicy for RandomAdmissibleActor {
    async fn act(
        &self,
        p: &crate::protocol::ActParams,
        _: &CancellationToken,
    ) -> Result<crate::protocol::ActResult, PolicyError> {
        let action = match &p.admissible_actions {
            Some(list) if list.is_empty() => {
                return Err(PolicyError::InvalidInput("admissibleActions is empty".into()))
            }
            Some(list) => {
                let seed = p.sampling.as_ref().and_then(|s| s.seed).unwrap_or(0);
                list[(splitmix64(seed) % list.len() as u64) as usize].clone()
            }
            None => "look".to_string(),
        };
        Ok(crate::protocol::ActResult { action, subtask_done: false, usage: Usage::default() })
    }
}

/// SplitMix64's finaliser: spreads a step seed's bits before taking it modulo a list's length.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The rule-based agent: all three roles without a model; the actor is the first admissible
/// action (`--policy rules`) or a random one (`--policy random`).
#[derive(Debug, Default, Clone)]
pub struct RuleAgent<A = FirstAdmissibleActor> {
    pub planner: WholeTaskPlanner,
    pub actor: A,
    pub progress: RecentActionsProgress,
}

#[async_trait]
impl<A: Send + Sync> HighLevelPolicy for RuleAgent<A> {
    async fn plan(&self, p: &PlanParams, c: &CancellationToken) -> Result<PlanResult, PolicyError> {
        self.planner.plan(p, c).await
    }
}

#[async_trait]
impl<A: crate::policy::LowLevelPolicy> crate::policy::LowLevelPolicy for RuleAgent<A> {
    async fn act(
        &self,
        p: &crate::protocol::ActParams,
        c: &CancellationToken,
    ) -> Result<crate::protocol::ActResult, PolicyError> {
        self.actor.act(p, c).await
    }
}

#[async_trait]
impl<A: Send + Sync> ProgressPolicy for RuleAgent<A> {
    async fn update(
        &self,
        p: &ProgressUpdateParams,
        c: &CancellationToken,
    ) -> Result<ProgressUpdateResult, PolicyError> {
        self.progress.update(p, c).await
    }
}

/// A deterministic local-progress tracker: keeps what a good summary of the current subtask must
/// hold and nothing else, in one bounded line:
/// `checked: cabinet 1, drawer 2 | found: apple 1 (countertop 1) | last: You open the drawer 2.`
///
/// * `checked`: the places the subtask has visited or opened (`go to X`, `open X`, `teleport to
///   X`), in order; with a `look` part that names the room ("This room is called the kitchen."),
///   the rooms the subtask has been in (ScienceWorld);
/// * `found`: things the subtask names that an observation showed (an `apple` for "take a
///   apple"), with the place they were seen; things without a number (ScienceWorld's "dove
///   egg" in "focus on the dove egg") count when the `look` part lists them;
/// * `holding`: what the `inventory` part lists, when the observation has one (ScienceWorld);
/// * `last`: the first sentence of the latest result.
///
/// ALFWorld's observations have neither part, so its lines are as they were before the parts
/// were read.
///
/// It labels the progress of expert demonstrations, and serves at run time in place of a learned
/// progress role. The line never exceeds `max_chars`: the oldest checked places go first.
#[derive(Debug, Clone)]
pub struct ProgressTracker {
    pub max_chars: usize,
    pub max_found: usize,
}

impl Default for ProgressTracker {
    fn default() -> Self {
        ProgressTracker { max_chars: 240, max_found: 3 }
    }
}

/// Words of a subtask that name no thing.
const NOT_THINGS: [&str; 16] = [
    "a", "an", "the", "another", "other", "take", "put", "in/on", "in", "on", "with", "find", "go", "to", "use", "and",
];

/// Verbs and prepositions of ScienceWorld's subtask names (`gold_subtasks` in its bridge): they
/// split a subtask into the object phrases matched against the `look` part.
const PHRASE_BREAKS: [&str; 22] = [
    "focus",
    "pick",
    "up",
    "move",
    "pour",
    "into",
    "dunk",
    "connect",
    "disconnect",
    "activate",
    "deactivate",
    "open",
    "close",
    "mix",
    "eat",
    "flush",
    "drop",
    "wait",
    "outside",
    "door",
    "at",
    "look",
];

/// The parsed fields of a progress line.
#[derive(Debug, Default, PartialEq)]
struct TrackedProgress {
    checked: Vec<String>,
    found: Vec<String>,
    holding: String,
    last: String,
}

impl TrackedProgress {
    fn parse(line: &str) -> Self {
        let mut t = TrackedProgress::default();
        for field in line.split(" | ") {
            let list = |v: &str| v.split(", ").map(str::to_string).filter(|s| !s.is_empty()).collect();
            if let Some(v) = field.strip_prefix("checked: ") {
                t.checked = list(v);
            } else if let Some(v) = field.strip_prefix("found: ") {
                t.found = list(v);
            } else if let Some(v) = field.strip_prefix("holding: ") {
                t.holding = v.to_string();
            } else if let Some(v) = field.strip_prefix("last: ") {
                t.last = v.to_string();
            }
        }
        t
    }

    fn render(&self) -> String {
        let mut fields = Vec::new();
        if !self.checked.is_empty() {
            fields.push(format!("checked: {}", self.checked.join(", ")));
        }
        if !self.found.is_empty() {
            fields.push(format!("found: {}", self.found.join(", ")));
        }
        if !self.holding.is_empty() {
            fields.push(format!("holding: {}", self.holding));
        }
        if !self.last.is_empty() {
            fields.push(format!("last: {}", self.last));
        }
        fields.join(" | ")
    }
}

/// The first sentence of `text`, at most `max` characters (cut at a word). Header lines such as
/// TextWorld's `-= Kitchen =-` are not sentences.
fn first_sentence(text: &str, max: usize) -> String {
    let body =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("-=")).collect::<Vec<_>>().join(" ");
    let s = body.split_inclusive(['.', '!', '?']).next().unwrap_or("").trim();
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    match cut.rfind(' ') {
        Some(i) => cut[..i].to_string(),
        None => cut,
    }
}

/// The room a ScienceWorld `look` part describes in its first sentence: "This room is called the
/// kitchen." -> kitchen; "This outside location is called the outside." -> outside.
fn room_of(look: &str) -> Option<&str> {
    let first = look.split('.').next()?;
    let name = first.split(" is called ").nth(1)?.trim();
    Some(name.strip_prefix("the ").unwrap_or(name))
}

/// The things a ScienceWorld `inventory` part lists ("In your inventory, you see:\n\ta
/// thermometer\n\tan orange"), without their articles.
fn inventory_items(inventory: &str) -> Vec<String> {
    let body = inventory.split_once(':').map_or(inventory, |(_, rest)| rest);
    body.lines()
        .map(|l| l.trim().trim_end_matches('.'))
        .filter(|l| !l.is_empty())
        .map(|l| ["a ", "an ", "the "].iter().find_map(|a| l.strip_prefix(a)).unwrap_or(l).to_string())
        .collect()
}

/// The object phrases of a subtask: its runs of words that are neither articles nor verbs nor
/// prepositions ("move the dove egg to the orange box" -> "dove egg", "orange box").
fn object_phrases(subtask: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    for word in subtask.split_whitespace().chain(std::iter::once("to")) {
        let w = word.trim_matches(|c: char| !c.is_alphanumeric());
        let lower = w.to_lowercase();
        if w.is_empty() || NOT_THINGS.contains(&lower.as_str()) || PHRASE_BREAKS.contains(&lower.as_str()) {
            if !run.is_empty() {
                out.push(run.join(" "));
                run.clear();
            }
        } else {
            run.push(w);
        }
    }
    out
}

/// Whether `text` names `phrase` as a whole phrase (not inside a longer word).
fn lists(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + phrase.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

impl ProgressTracker {
    /// The next progress line from the previous one, the action and what it led to (its text).
    pub fn track(&self, subtask: &str, previous: &str, action: &str, observation: &str) -> String {
        self.track_observation(subtask, previous, action, &Observation::text(observation))
    }

    /// [`ProgressTracker::track`] reading the observation's `look` and `inventory` parts too.
    pub fn track_observation(&self, subtask: &str, previous: &str, action: &str, obs: &Observation) -> String {
        let observation = obs.text.as_str();
        let mut t = TrackedProgress::parse(previous);
        let action = action.trim();
        // ScienceWorld's "open door to X" opens a door and goes nowhere.
        let place = action
            .strip_prefix("go to ")
            .or_else(|| action.strip_prefix("teleport to "))
            .or_else(|| action.strip_prefix("open ").filter(|p| !p.starts_with("door to ")))
            .map(str::trim);
        let look = obs.parts.get("look").map(String::as_str);
        let room = look.and_then(room_of);
        for place in [place, room].into_iter().flatten().filter(|p| !p.is_empty()) {
            if t.checked.last().map(String::as_str) != Some(place) {
                t.checked.retain(|c| c != place);
                t.checked.push(place.to_string());
            }
        }
        if let Some(inventory) = obs.parts.get("inventory") {
            t.holding = inventory_items(inventory).join(", ");
        }
        let things: Vec<String> = subtask
            .split_whitespace()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
            .filter(|w| !w.is_empty() && !NOT_THINGS.contains(&w.as_str()))
            .collect();
        let at = t.checked.last().cloned();
        let words: Vec<String> = observation
            .split_whitespace()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
            .collect();
        for pair in words.windows(2) {
            let (name, number) = (&pair[0], &pair[1]);
            if things.contains(name) && !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()) {
                let item = format!("{name} {number}");
                if at.as_deref() == Some(item.as_str()) {
                    continue; // the place itself, not a thing in it
                }
                let entry = match &at {
                    Some(place) => format!("{item} ({place})"),
                    None => item.clone(),
                };
                t.found.retain(|f| f != &item && !f.starts_with(&format!("{item} (")));
                t.found.push(entry);
            }
        }
        if let Some(look) = look {
            let at = room.map(|r| format!(" ({r})")).unwrap_or_default();
            for phrase in object_phrases(subtask) {
                if lists(look, &phrase) {
                    t.found.retain(|f| f != &phrase && !f.starts_with(&format!("{phrase} (")));
                    t.found.push(format!("{phrase}{at}"));
                }
            }
        }
        let drop = t.found.len().saturating_sub(self.max_found);
        t.found.drain(..drop);
        t.last = first_sentence(observation, 80);
        let mut line = t.render();
        while line.chars().count() > self.max_chars && !t.checked.is_empty() {
            t.checked.remove(0);
            line = t.render();
        }
        if line.chars().count() > self.max_chars && !t.holding.is_empty() {
            t.holding.clear();
            line = t.render();
        }
        if line.chars().count() > self.max_chars {
            line = line.chars().take(self.max_chars).collect();
        }
        line
    }
}

#[async_trait]
impl ProgressPolicy for ProgressTracker {
    async fn update(
        &self,
        p: &ProgressUpdateParams,
        _: &CancellationToken,
    ) -> Result<ProgressUpdateResult, PolicyError> {
        let progress = self.track_observation(&p.subtask, &p.previous_progress, &p.action, &p.observation);
        Ok(ProgressUpdateResult { progress, usage: Usage::default() })
    }
}

#[cfg(test)]
mod tracker_tests {
    use super::{HistoryProgress, ProgressTracker};

    #[test]
    fn history_keeps_every_action_and_result_in_order() {
        let h = HistoryProgress::append("", " go to desk 1", "You arrive at desk 1.\n");
        let h = HistoryProgress::append(&h, "take mug 1 from desk 1", "You pick up the mug 1 from the desk 1.");
        assert_eq!(
            h,
            "> go to desk 1\nYou arrive at desk 1.\n> take mug 1 from desk 1\nYou pick up the mug 1 from the desk 1."
        );
    }

    #[test]
    fn dropping_the_oldest_entry_keeps_the_newest_until_one_is_left() {
        let h = HistoryProgress::append("", "go to desk 1", "You arrive at desk 1.\nOn it: a mug.");
        let h = HistoryProgress::append(&h, "take mug 1", "You take the mug.");
        let h = HistoryProgress::append(&h, "look", "A room.");
        let h = HistoryProgress::drop_oldest(&h).unwrap();
        assert_eq!(h, "> take mug 1\nYou take the mug.\n> look\nA room.");
        let h = HistoryProgress::drop_oldest(h).unwrap();
        assert_eq!(h, "> look\nA room.");
        assert_eq!(HistoryProgress::drop_oldest(h), None);
        assert_eq!(HistoryProgress::drop_oldest(""), None);
    }

    #[test]
    fn keeps_checked_places_found_things_and_the_last_result() {
        let t = ProgressTracker::default();
        let s = "take a apple";
        let p = t.track(s, "", "go to cabinet 1", "You arrive at cabinet 1. The cabinet 1 is closed.");
        assert_eq!(p, "checked: cabinet 1 | last: You arrive at cabinet 1.");
        let p =
            t.track(s, &p, "open cabinet 1", "You open the cabinet 1. The cabinet 1 is open. In it, you see a cup 1.");
        assert_eq!(p, "checked: cabinet 1 | last: You open the cabinet 1.");
        let p = t.track(
            s,
            &p,
            "go to countertop 2",
            "You arrive at countertop 2. On the countertop 2, you see a apple 3, a bread 1, and a apple 1.",
        );
        assert_eq!(
            p,
            "checked: cabinet 1, countertop 2 | found: apple 3 (countertop 2), apple 1 (countertop 2) | last: You \
             arrive at countertop 2."
        );
        // Going back somewhere moves it to the end rather than listing it twice.
        let p = t.track(s, &p, "go to cabinet 1", "You arrive at cabinet 1. The cabinet 1 is open.");
        assert!(p.starts_with("checked: countertop 2, cabinet 1 | found: apple 3"), "{p}");
    }

    #[test]
    fn reads_scienceworld_rooms_objects_and_inventory_from_the_parts() {
        use crate::protocol::Observation;
        let t = ProgressTracker::default();
        let s = "focus on the dove egg";
        let outside = |text: &str, inventory: &str| {
            Observation::text(text)
                .with_part("look", "This outside location is called the outside. Here you see: \n\tthe agent\n\ta dove egg\n\ta fire pit (containing nothing)\n\tA door to the kitchen (that is open)")
                .with_part("inventory", inventory)
        };
        let kitchen = Observation::text("The door is now open.")
            .with_part("look", "This room is called the kitchen. In it, you see: \n\tthe agent\n\ta fridge")
            .with_part("inventory", "In your inventory, you see:\n\tan orange\n");
        // Opening a door goes nowhere: the room the agent is in is what counts.
        let p = t.track_observation(s, "", "open door to outside", &kitchen);
        assert_eq!(p, "checked: kitchen | holding: orange | last: The door is now open.");
        let p = t.track_observation(
            s,
            &p,
            "go to outside",
            &outside("You move to the outside.", "In your inventory, you see:\n\tan orange\n\ta thermometer\n"),
        );
        assert_eq!(
            p,
            "checked: kitchen, outside | found: dove egg (outside) | holding: orange, thermometer | last: You move to \
             the outside."
        );
        // An egg named inside a longer word is not the egg.
        let p = t.track_observation(
            "pick up the egg",
            "",
            "look around",
            &Observation::text("x").with_part("look", "a dove eggshell"),
        );
        assert!(!p.contains("found"), "{p}");
    }

    #[test]
    fn stays_within_its_bound() {
        let t = ProgressTracker { max_chars: 120, max_found: 2 };
        let mut p = String::new();
        for i in 0..40 {
            p = t.track(
                "take a mug",
                &p,
                &format!("go to drawer {i}"),
                &format!("On the drawer {i}, you see a mug {i}."),
            );
            assert!(p.chars().count() <= 120, "{p}");
        }
        assert!(p.contains("drawer 39") && p.contains("mug 39 (drawer 39)") && !p.contains("mug 37"), "{p}");
    }
}
