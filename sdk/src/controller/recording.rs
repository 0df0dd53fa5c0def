//! The recording half of the controller: the transitions the episode loop leaves open until the
//! next state is known, and how they are closed into record lines.

use crate::protocol::*;

pub(super) fn label(key: &str, value: serde_json::Value) -> Meta {
    let mut map = serde_json::Map::new();
    map.insert(key.to_string(), value);
    Some(map)
}

/// Receives recording lines as the episode produces them.
pub trait RecordSink: Send {
    fn record(&mut self, line: RecordLine);
}

impl RecordSink for Vec<RecordLine> {
    fn record(&mut self, line: RecordLine) {
        self.push(line);
    }
}

/// Discards every line.
pub struct NoRecording;

impl RecordSink for NoRecording {
    fn record(&mut self, _: RecordLine) {}
}

/// A high-level transition waiting for the state at the next plan.
pub(super) struct OpenPlan {
    pub(super) step: u64,
    pub(super) state: HighState,
    pub(super) subtask: String,
    pub(super) reward: f64,
    pub(super) usage: RoleUsage,
    pub(super) meta: Meta,
}

/// A low-level transition waiting for the progress its action leads to.
pub(super) struct OpenAct {
    pub(super) step: u64,
    pub(super) state: LowState,
    pub(super) action: String,
    pub(super) subtask_done: bool,
    pub(super) reward: f64,
    pub(super) done: bool,
    pub(super) usage: RoleUsage,
    pub(super) next_observation: Observation,
    pub(super) meta: Meta,
}

pub(super) struct Recorder<'s> {
    pub(super) key: EpisodeKey,
    pub(super) sink: &'s mut dyn RecordSink,
}

impl Recorder<'_> {
    pub(super) fn emit(
        &mut self,
        step: u64,
        transition: LevelTransition,
        reward: f64,
        done: bool,
        usage: RoleUsage,
        meta: Meta,
    ) {
        self.sink.record(RecordLine::Transition(TransitionRecord {
            episode: self.key.clone(),
            step,
            transition,
            reward,
            done,
            usage,
            meta,
        }));
    }

    pub(super) fn close_plan(&mut self, plan: OpenPlan, next: Option<HighState>, done: bool) {
        let t = LevelTransition::High { state: plan.state, subtask: plan.subtask, next_state: next };
        self.emit(plan.step, t, plan.reward, done, plan.usage, plan.meta);
    }

    pub(super) fn close_act(&mut self, act: OpenAct, next_progress: String) {
        let next_state =
            LowState { subtask: act.state.subtask.clone(), progress: next_progress, observation: act.next_observation };
        let t =
            LevelTransition::Low { state: act.state, action: act.action, subtask_done: act.subtask_done, next_state };
        self.emit(act.step, t, act.reward, act.done, act.usage, act.meta);
    }
}

/// The expert's advice as a transition's `_meta.expert`.
pub(super) fn advice_meta(advice: &Option<ExpertActionResult>) -> Meta {
    let advice = advice.as_ref()?;
    label("expert", serde_json::to_value(advice).ok()?)
}
