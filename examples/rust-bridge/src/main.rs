//! lockbox: a room of boxes, each locked with the key of its colour. `open-box`: open the target
//! box. `find-key`: take the target key, which lies inside another box. A variation is built from
//! its index alone, so seeded resets repeat exactly. The harness checks the reset's task, split and
//! variation against `tasks` and tracks the episode (no step before a reset or after `done`), so
//! none of that is here.
use async_trait::async_trait;
use stepwire_sdk::environment::{EnvError, Environment};
use stepwire_sdk::protocol::*;

const COLORS: [&str; 5] = ["red", "blue", "green", "gold", "black"];
const SPLITS: [(&str, u64); 2] = [("train", 40), ("test", 10)];

/// One episode: the colours in the room and the actions that solve it, in order.
#[derive(Default)]
struct Lockbox {
    colors: Vec<&'static str>,
    solution: Vec<String>,
    done_steps: usize,
    turns: u32,
}

impl Lockbox {
    fn observe(&self, text: &str) -> Observation {
        let held: Vec<_> = self.solution[..self.done_steps].iter().filter_map(|a| a.strip_prefix("take ")).collect();
        Observation::text(format!("{text} Boxes here: {}.", self.colors.join(", ")))
            .with_part("inventory", format!("you hold: {}", held.join(", ")))
    }
}

#[async_trait]
impl Environment for Lockbox {
    fn capabilities(&self) -> EnvironmentCapabilities {
        let caps = EnvironmentCapabilities::named("lockbox").with_admissible_actions().with_expert_action();
        caps.with_seeded_reset().with_observation_parts(["inventory"])
    }
    async fn tasks(&mut self) -> Result<Vec<TaskInfo>, EnvError> {
        Ok(vec![TaskInfo::new("open-box", SPLITS), TaskInfo::new("find-key", SPLITS)])
    }
    async fn reset(&mut self, p: ResetParams) -> Result<ResetResult, EnvError> {
        // The harness has checked the task and filled in the split and variation.
        let (split, index) = (p.split.as_deref().unwrap_or("train"), p.variation.unwrap_or(0));
        let v = index as usize + if split == "test" { 40 } else { 0 };
        let colors: Vec<_> = (0..2 + v % 3).map(|i| COLORS[(i + v) % 5]).collect();
        let (target, other) = (colors[v % colors.len()], colors[(v + 1) % colors.len()]);
        let (task, solution) = match p.task.as_str() {
            "open-box" => {
                (format!("Open the {target} box."), vec![format!("take {target} key"), format!("open {target} box")])
            }
            _ => (
                format!("Find the {target} key; it is in the {other} box."),
                vec![format!("take {other} key"), format!("open {other} box"), format!("take {target} key")],
            ),
        };
        *self = Lockbox { colors, solution, ..Default::default() };
        Ok(ResetResult::new(format!("lockbox-{v}"), task, self.observe("You are in a small room."), index)
            .with_max_score(1.0))
    }
    async fn step(&mut self, action: &str) -> Result<StepResult, EnvError> {
        let text = match action.split_whitespace().collect::<Vec<_>>()[..] {
            _ if self.solution.get(self.done_steps).is_some_and(|a| a == action) => {
                self.done_steps += 1;
                format!("Done: {action}.")
            }
            ["look"] | ["take", _, "key"] | ["open", _, "box"] => "Nothing changes.".to_string(),
            _ => return Err(EnvError::InvalidAction(format!("`{action}`: try look, take/open <colour> key/box"))),
        };
        self.turns += 1;
        let won = self.done_steps == self.solution.len();
        let mut result = StepResult::new(self.observe(&text), f64::from(u8::from(won)), f64::from(u8::from(won)));
        (result.won, result.truncated) = (won, !won && self.turns >= 25);
        result.done = result.won || result.truncated;
        Ok(result)
    }
    async fn admissible_actions(&mut self) -> Result<Vec<String>, EnvError> {
        let verbs = self.colors.iter().flat_map(|c| [format!("take {c} key"), format!("open {c} box")]);
        Ok(std::iter::once("look".to_string()).chain(verbs).collect())
    }
    async fn expert_action(&mut self) -> Result<ExpertActionResult, EnvError> {
        // Each key and each box is its own subtask: "get the red key", "open the red box".
        Ok(match self.solution.get(self.done_steps) {
            Some(action) => {
                let subtask = match action.split_once(' ') {
                    Some(("take", what)) => format!("get the {what}"),
                    Some((_, what)) => format!("open the {what}"),
                    None => action.clone(),
                };
                ExpertActionResult::action(action).with_subtask(subtask)
            }
            None => ExpertActionResult::none(),
        })
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    stepwire_sdk::harness::serve_stdio(Lockbox::default()).await
}
