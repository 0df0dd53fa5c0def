//! The STEP-HRL controller: plays one episode of an [`Environment`] with the three policies,
//! recording every level's augmented transition.
//!
//! The same code serves an in-process host, the `stepwire run` runner and tests: environments may
//! be local or a [`crate::client::BridgeClient`], policies ONNX models, rules or anything else.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::environment::{EnvError, Environment};
use crate::policy::{HighLevelPolicy, LowLevelPolicy, PolicyError, ProgressPolicy};
use crate::protocol::*;
use crate::rules::ProgressTracker;
use crate::stepper::{self, ActionChoice};

mod recording;

use recording::{advice_meta, label, OpenAct, OpenPlan, Recorder};
pub use recording::{NoRecording, RecordSink};

/// Where the controller gets low-level actions.
#[derive(Clone, Copy)]
pub enum ActionSource<'a> {
    Policy(&'a dyn LowLevelPolicy),
    /// The environment's expert (`env/expertAction`): for demonstrations and replay checks.
    EnvironmentExpert,
}

/// The three roles, borrowed for an episode.
#[derive(Clone, Copy)]
pub struct Policies<'a> {
    pub high: &'a dyn HighLevelPolicy,
    pub low: ActionSource<'a>,
    pub progress: &'a dyn ProgressPolicy,
}

/// How an episode is played.
#[derive(Debug, Clone)]
pub struct EpisodeOptions {
    pub max_steps: u64,
    /// Ask the environment for admissible actions each step and constrain the low level to them.
    pub admissible_actions: bool,
    /// Sampling for every policy call. With a temperature, each step's seed is derived from
    /// this seed (else the reset's), the episode and the step, so an episode replays exactly
    /// while a state visited twice need not get the same answer (greedy decoding can cycle).
    pub sampling: Option<Sampling>,
    /// While a policy plays, also ask the environment's expert what it would do in each state and
    /// keep its answer beside the transitions (`_meta.expert`), with the rules tracker's progress
    /// (`_meta.expertProgress`): labels for training on the states the learner itself visits.
    pub expert_labels: bool,
    /// For a policy that writes its actions freely: when the environment refuses one, ask for
    /// the admissible actions and let the low level choose again among them, once, in the same
    /// step (see `repair_refused`).
    pub repair_refused: bool,
}

impl Default for EpisodeOptions {
    fn default() -> Self {
        EpisodeOptions {
            max_steps: 100,
            admissible_actions: true,
            sampling: None,
            expert_labels: false,
            repair_refused: false,
        }
    }
}

/// `_meta` holding one labelled value.
/// Why an episode could not be played to its end.
#[derive(Debug, thiserror::Error)]
pub enum EpisodeError {
    #[error("environment: {0}")]
    Environment(#[from] EnvError),
    #[error("policy: {0}")]
    Policy(#[from] PolicyError),
}

/// The subtask the environment's expert named for its action: planned as given.
struct ExpertPlan(String);

#[async_trait::async_trait]
impl HighLevelPolicy for ExpertPlan {
    async fn plan(&self, _: &PlanParams, _: &CancellationToken) -> Result<PlanResult, PolicyError> {
        Ok(PlanResult { subtask: self.0.clone(), usage: Usage::default() })
    }
}

/// Plays one episode from `reset` to its end (or `max_steps`), recording as it goes.
///
/// Environment faults during the episode end it with outcome `failed` and the reason, rather than
/// an error, so the caller always gets a summary; only a failed reset is an `Err`.
/// The sampling of one step: the run's, with a seed of its own, so that a policy which samples
/// (asked to, or by its own default) replays exactly, and a state met twice can be answered
/// differently. Greedy policies ignore the seed.
fn step_sampling(base: Option<&Sampling>, episode_seed: Option<u64>, key: &EpisodeKey, step: u64) -> Option<Sampling> {
    let base = base.cloned().unwrap_or_default();
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let seed = base.seed.or(episode_seed).unwrap_or(0);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let fields = [
        &seed.to_le_bytes()[..],
        key.task.as_bytes(),
        &key.variation.to_le_bytes(),
        &key.repeat.to_le_bytes(),
        &step.to_le_bytes(),
    ];
    for byte in fields.iter().flat_map(|f| f.iter()) {
        h = (h ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    Some(Sampling { seed: Some(h), ..base })
}

pub async fn play_episode<E: Environment + ?Sized>(
    env: &mut E,
    policies: Policies<'_>,
    reset: ResetParams,
    key: EpisodeKey,
    options: &EpisodeOptions,
    sink: &mut dyn RecordSink,
    cancel: &CancellationToken,
) -> Result<EpisodeSummary, EpisodeError> {
    let mut env_time = Duration::ZERO;
    let mut agent_time = Duration::ZERO;
    let t0 = Instant::now();
    let episode_seed = reset.seed;
    let reset_params = reset.clone();
    let first = env.reset(reset).await?;
    env_time += t0.elapsed();

    let mut rec = Recorder { key: key.clone(), sink };
    let mut state = AugmentedState::new(first.task_description.clone());
    let mut observation = first.observation;
    let mut usage = Usage::default();
    let mut score = 0.0;
    let mut outcome = EpisodeOutcome::Truncated;
    let mut failure = None;
    let mut open_plan: Option<OpenPlan> = None;
    let mut open_act: Option<OpenAct> = None;
    let mut steps = 0;
    // The expert named subtasks: its structure is the episode's hierarchy.
    let mut expert_structured = false;

    while steps < options.max_steps {
        let t = Instant::now();
        let admissible = match (options.admissible_actions, policies.low) {
            (true, ActionSource::Policy(_)) => Some(env.admissible_actions().await),
            _ => None,
        };
        let given = match policies.low {
            ActionSource::EnvironmentExpert => Some(env.expert_action().await),
            ActionSource::Policy(_) => None,
        };
        // What the expert would do here, for labels only (a state it cannot advise on has none).
        let advice = match (options.expert_labels, policies.low) {
            (true, ActionSource::Policy(_)) => env.expert_action().await.ok(),
            _ => None,
        };
        env_time += t.elapsed();
        let admissible = match admissible.transpose() {
            Ok(a) => a,
            Err(e) => {
                failure = Some(format!("admissible actions: {e}"));
                break;
            }
        };
        let mut expert_plan = None;
        let low = match given {
            None => match policies.low {
                ActionSource::Policy(p) => ActionChoice::Policy(p),
                ActionSource::EnvironmentExpert => unreachable!("expert source always fetches"),
            },
            Some(Ok(ExpertActionResult { action: Some(action), subtask })) => {
                if let Some(subtask) = subtask.filter(|s| !s.trim().is_empty()) {
                    expert_structured = true;
                    // A new subtask name: the previous action was the last of its subtask.
                    if state.subtask.as_ref().is_some_and(|current| *current != subtask) {
                        state.subtask_done = true;
                        if let Some(act) = open_act.as_mut() {
                            act.subtask_done = true;
                        }
                    }
                    expert_plan = Some(ExpertPlan(subtask));
                }
                ActionChoice::Given { action, subtask_done: false }
            }
            Some(Ok(ExpertActionResult { action: None, .. })) | Some(Err(EnvError::NoExpert(_))) => {
                failure = Some("the expert has no action for this state".into());
                break;
            }
            Some(Err(e)) => {
                failure = Some(format!("expert action: {e}"));
                break;
            }
        };

        let before = state.clone();
        let params = AgentStepParams {
            state: state.clone(),
            observation: observation.clone(),
            admissible_actions: admissible,
            sampling: step_sampling(options.sampling.as_ref(), episode_seed, &key, steps),
            meta: None,
        };
        let t = Instant::now();
        let high: &dyn HighLevelPolicy = match &expert_plan {
            Some(plan) => plan,
            None => policies.high,
        };
        let result = stepper::step(high, low, policies.progress, &params, cancel).await;
        agent_time += t.elapsed();
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                failure = Some(format!("policy: {e}"));
                break;
            }
        };
        usage.add(result.usage);

        // Close what this step's decisions completed.
        if let Some(progress) = &result.decisions.progress {
            let prev = before.pending_action.clone().unwrap_or_default();
            let pstate = ProgressState {
                subtask: before.subtask.clone().unwrap_or_default(),
                previous_progress: before.progress.clone(),
                action: prev,
                observation: observation.clone(),
            };
            // The action's own transition first, then the progress it led to.
            if let Some(act) = open_act.take() {
                rec.close_act(act, progress.clone());
            }
            let meta = options.expert_labels.then(|| {
                let tracked = ProgressTracker::default().track_observation(
                    &pstate.subtask,
                    &pstate.previous_progress,
                    &pstate.action,
                    &pstate.observation,
                );
                label("expertProgress", serde_json::Value::String(tracked))
            });
            rec.emit(
                steps.saturating_sub(1),
                LevelTransition::Progress { state: pstate, progress: progress.clone() },
                0.0,
                false,
                result.usage.progress,
                meta.flatten(),
            );
        }
        if let Some(subtask) = &result.decisions.planned_subtask {
            let hstate = HighState {
                task: before.task.clone(),
                completed_subtasks: result.next_state.completed_subtasks.clone(),
                last_progress: result.next_state.last_progress.clone(),
                observation: observation.clone(),
            };
            if let Some(plan) = open_plan.take() {
                rec.close_plan(plan, Some(hstate.clone()), false);
            }
            open_plan = Some(OpenPlan {
                step: steps,
                state: hstate,
                subtask: subtask.clone(),
                reward: 0.0,
                usage: result.usage.high,
                meta: advice_meta(&advice),
            });
        }
        if let Some(act) = open_act.take() {
            // No progress update happened (the progress module was skipped): close as is.
            let progress = act.state.progress.clone();
            rec.close_act(act, progress);
        }

        let t = Instant::now();
        let mut action = result.action.clone();
        let mut subtask_done = result.subtask_done;
        let mut low_usage = result.usage.low;
        let mut stepped = env.step(&action).await;
        env_time += t.elapsed();
        if let (Err(EnvError::InvalidAction(_)), true, ActionSource::Policy(low)) =
            (&stepped, options.repair_refused, policies.low)
        {
            let act = ActParams {
                subtask: result.next_state.subtask.clone().unwrap_or_default(),
                progress: result.next_state.progress.clone(),
                observation: observation.clone(),
                admissible_actions: None,
                sampling: params.sampling.clone(),
                meta: None,
            };
            if let Some(repaired) = repair_refused(env, low, act, cancel).await {
                tracing::debug!(refused = %action, played = %repaired.action, "refused action repaired");
                env_time += repaired.env_time;
                agent_time += repaired.agent_time;
                usage.add(repaired.usage);
                low_usage.add(repaired.usage.low);
                (action, subtask_done) = (repaired.action, repaired.subtask_done);
                stepped = repaired.stepped;
            }
        }
        let stepped = match stepped {
            Ok(s) => s,
            Err(EnvError::InvalidAction(m)) => {
                // The policy proposed something the environment refuses: the world did not
                // change; record the refusal as the observation and go on.
                StepResult {
                    observation: Observation::text(format!("Invalid action: {m}")),
                    reward: 0.0,
                    score,
                    done: false,
                    won: false,
                    truncated: false,
                    meta: None,
                }
            }
            Err(e) => {
                failure = Some(format!("step: {e}"));
                break;
            }
        };
        steps += 1;
        score = stepped.score;
        if let Some(plan) = open_plan.as_mut() {
            plan.reward += stepped.reward;
        }
        open_act = Some(OpenAct {
            step: steps - 1,
            state: LowState {
                subtask: result.next_state.subtask.clone().unwrap_or_default(),
                // What the low level saw: the progress after this step's update (empty on a new subtask).
                progress: result.next_state.progress.clone(),
                observation: observation.clone(),
            },
            action: action.clone(),
            subtask_done,
            reward: stepped.reward,
            done: stepped.done,
            usage: low_usage,
            next_observation: stepped.observation.clone(),
            meta: advice_meta(&advice),
        });
        state = result.next_state;
        // The action played (a repaired one in place of the refused) is the one progress summarises.
        state.pending_action = Some(action);
        state.subtask_done = subtask_done;
        observation = stepped.observation;
        if stepped.done {
            outcome = if stepped.won {
                EpisodeOutcome::Won
            } else if stepped.truncated {
                EpisodeOutcome::Truncated
            } else {
                EpisodeOutcome::Lost
            };
            break;
        }
    }

    if let Some(mut act) = open_act.take() {
        // The winning action completes the expert's last subtask.
        act.subtask_done |= expert_structured && outcome == EpisodeOutcome::Won;
        let progress = act.state.progress.clone();
        rec.close_act(act, progress);
    }
    if let Some(plan) = open_plan.take() {
        rec.close_plan(plan, None, true);
    }
    if failure.is_some() {
        outcome = EpisodeOutcome::Failed;
    }
    let summary = EpisodeSummary {
        episode: key,
        task_description: first.task_description,
        outcome,
        score,
        steps,
        failure,
        reset: Some(reset_params),
        max_score: first.max_score,
        reset_meta: first.meta,
        env_seconds: env_time.as_secs_f64(),
        agent_seconds: agent_time.as_secs_f64(),
        usage,
        meta: None,
    };
    rec.sink.record(RecordLine::Episode(summary.clone()));
    Ok(summary)
}

/// What a repaired step played, and the time it took.
struct Repaired {
    action: String,
    subtask_done: bool,
    usage: Usage,
    stepped: Result<StepResult, EnvError>,
    env_time: Duration,
    agent_time: Duration,
}

/// A free-writing policy's action was refused: the low level chooses again, constrained to the
/// environment's admissible actions, and that action is played. A near miss ("pick up flower pot
/// 8" where the pot in this world is number 3) becomes the playable action the policy likes best,
/// instead of a wasted step whose observation ("Invalid action") the policy never saw in
/// training. None when the list or the second choice cannot be had (the refusal then stands).
async fn repair_refused<E: Environment + ?Sized>(
    env: &mut E,
    low: &dyn LowLevelPolicy,
    mut act: ActParams,
    cancel: &CancellationToken,
) -> Option<Repaired> {
    let t = Instant::now();
    let admissible = env.admissible_actions().await.ok().filter(|a| !a.is_empty());
    let mut env_time = t.elapsed();
    act.admissible_actions = Some(admissible?);
    let t = Instant::now();
    let chosen = low.act(&act, cancel).await;
    let agent_time = t.elapsed();
    let chosen = chosen.map_err(|e| tracing::debug!("repairing a refused action: {e}")).ok()?;
    let t = Instant::now();
    let stepped = env.step(&chosen.action).await;
    env_time += t.elapsed();
    Some(Repaired {
        action: chosen.action,
        subtask_done: chosen.subtask_done,
        usage: chosen.usage,
        stepped,
        env_time,
        agent_time,
    })
}

#[cfg(test)]
mod tests {
    use super::step_sampling;
    use crate::protocol::{EpisodeKey, Sampling};

    #[test]
    fn sampling_seeds_vary_by_step_and_replay_exactly() {
        let key = EpisodeKey { env: "e".into(), task: "t".into(), split: "s".into(), variation: 3, repeat: 0 };
        let greedy = Sampling { temperature: None, top_p: None, seed: None, max_tokens: None };
        // A run that names no sampling still seeds each step, for policies that sample by default.
        let seeded = step_sampling(None, Some(1), &key, 5).unwrap();
        assert!(seeded.temperature.is_none() && seeded.seed.is_some());
        assert_eq!(step_sampling(Some(&greedy), Some(1), &key, 5), Some(seeded));
        let hot = Sampling { temperature: Some(0.7), ..greedy };
        let seed = |episode_seed, step| step_sampling(Some(&hot), Some(episode_seed), &key, step).unwrap().seed;
        assert_eq!(seed(1, 5), seed(1, 5), "a run repeats");
        assert_ne!(seed(1, 5), seed(1, 6), "a later step samples afresh");
        assert_ne!(seed(1, 5), seed(2, 5), "another episode seed, other samples");
        let pinned = Sampling { seed: Some(9), ..hot.clone() };
        assert_eq!(
            step_sampling(Some(&pinned), Some(1), &key, 5).unwrap().seed,
            step_sampling(Some(&pinned), Some(2), &key, 5).unwrap().seed,
            "an explicit seed overrides the episode's"
        );
        assert_eq!(step_sampling(Some(&pinned), Some(1), &key, 5).unwrap().temperature, Some(0.7));
    }
}
