//! lockbox: a room of locked boxes. Each box opens with the key of its colour; a key lies on the
//! floor or inside another box. Tasks: `open-box` (open the target box) and `find-key` (take the
//! target key). Every variation is built from its index alone, so seeded resets repeat exactly.
use async_trait::async_trait;
use stepwire_sdk::environment::{EnvError, Environment};
use stepwire_sdk::protocol::*;

const COLORS: [&str; 5] = ["red", "blue", "green", "gold", "black"];
const SPLITS: [(&str, u64); 2] = [("train", 40), ("test", 10)]; // test variations follow train's
const FLOOR: usize = usize::MAX; // where a key can be, besides inside box `b` or held
const HELD: usize = usize::MAX - 1;

#[derive(Default)]
struct Lockbox {
    colors: Vec<&'static str>,
    key_at: Vec<usize>,
    open: Vec<bool>,
    open_task: bool,
    steps: u32,
    done: Option<bool>, // None until the first reset
}

impl Lockbox {
    fn reachable(&self, k: usize) -> bool {
        self.key_at[k] == FLOOR || self.key_at[k] < HELD && self.open[self.key_at[k]]
    }
    fn names(&self, what: &str, pick: impl Fn(usize) -> bool) -> Vec<String> {
        let all = 0..self.colors.len();
        all.filter(|&i| pick(i))
            .map(|i| format!("{} {what}", self.colors[i]))
            .collect()
    }
    fn observe(&self, text: String) -> Observation {
        let held = self.names("key", |k| self.key_at[k] == HELD).join(", ");
        Observation::text(text).with_part("inventory", format!("You carry: [{held}]."))
    }
    fn look(&self) -> String {
        let locked = self.names("box", |b| !self.open[b]).join(", ");
        let keys = self.names("key", |k| self.reachable(k)).join(", ");
        format!("You are in a small room. Locked: [{locked}]. Keys in reach: [{keys}].")
    }
    /// The next action towards holding key `k`: take it, or open (or get the key of) its box.
    fn plan(&self, k: usize) -> String {
        match self.key_at[k] {
            b if b < HELD && !self.open[b] && self.key_at[b] == HELD => {
                format!("open {} box", self.colors[b])
            }
            b if b < HELD && !self.open[b] => self.plan(b),
            _ => format!("take {} key", self.colors[k]),
        }
    }
    fn color(&self, c: &str) -> Result<usize, EnvError> {
        let no = || EnvError::InvalidAction(format!("there is no {c} here"));
        self.colors.iter().position(|x| *x == c).ok_or_else(no)
    }
}

#[async_trait]
impl Environment for Lockbox {
    fn capabilities(&self) -> EnvironmentCapabilities {
        let caps = EnvironmentCapabilities::named("lockbox").with_admissible_actions();
        caps.with_expert_action()
            .with_seeded_reset()
            .with_observation_parts(["inventory"])
    }
    async fn tasks(&mut self) -> Result<Vec<TaskInfo>, EnvError> {
        Ok(vec![
            TaskInfo::new("open-box", SPLITS),
            TaskInfo::new("find-key", SPLITS),
        ])
    }
    async fn reset(&mut self, p: ResetParams) -> Result<ResetResult, EnvError> {
        let split = p.split.as_deref().unwrap_or("train");
        let (first, count) = if split == "test" { (40, 10) } else { (0, 40) };
        let idx = p.variation.unwrap_or(p.seed.unwrap_or(0) % count);
        if !["open-box", "find-key"].contains(&p.task.as_str())
            || !["train", "test"].contains(&split)
            || idx >= count
        {
            return Err(EnvError::UnknownTask(format!(
                "no {} variation {idx} in `{split}`",
                p.task
            )));
        }
        let (v, n) = (first + idx, 2 + (first + idx) as usize % 3);
        let mix = |i: usize| (v * 2_654_435_761 + i as u64 * 40_503) >> 7;
        let colors = (0..n).map(|i| COLORS[(i + v as usize / 3) % 5]).collect();
        let key_at = (0..n).map(|i| {
            if i > 0 && mix(i) % 3 > 0 {
                mix(i + 9) as usize % i
            } else {
                FLOOR
            }
        });
        let open_task = p.task == "open-box";
        *self = Lockbox {
            colors,
            key_at: key_at.collect(),
            open: vec![false; n],
            open_task,
            steps: 0,
            done: Some(false),
        };
        let goal = if open_task {
            "Open the # box."
        } else {
            "Find the # key and take it."
        };
        let obs = self.observe(self.look());
        Ok(ResetResult::new(
            format!("lockbox-{v}"),
            goal.replace('#', self.colors[n - 1]),
            obs,
            idx,
        )
        .with_max_score(1.0))
    }
    async fn step(&mut self, action: &str) -> Result<StepResult, EnvError> {
        match self.done {
            None => return Err(EnvError::NoEpisode),
            Some(true) => return Err(EnvError::EpisodeOver),
            _ => {}
        }
        let text = match action.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["look"] => self.look(),
            ["take", c, "key"] if self.reachable(self.color(c)?) => {
                let k = self.color(c)?;
                self.key_at[k] = HELD;
                format!("You take the {c} key.")
            }
            ["open", c, "box"]
                if self.key_at[self.color(c)?] == HELD && !self.open[self.color(c)?] =>
            {
                let b = self.color(c)?;
                self.open[b] = true;
                format!(
                    "The {c} box opens. Inside: [{}].",
                    self.names("key", |k| self.key_at[k] == b).join(", ")
                )
            }
            ["take", c, "key"] | ["open", c, "box"] => {
                self.color(c)?;
                format!(
                    "Nothing happens: the {c} key is out of reach, or the box is locked or open."
                )
            }
            _ => {
                return Err(EnvError::InvalidAction(format!(
                    "`{action}`: try look, take <colour> key, open <colour> box"
                )))
            }
        };
        let t = self.colors.len() - 1;
        let won = if self.open_task {
            self.open[t]
        } else {
            self.key_at[t] == HELD
        };
        self.steps += 1;
        self.done = Some(won || self.steps >= 25);
        let result = StepResult::new(
            self.observe(text),
            f64::from(u8::from(won)),
            f64::from(u8::from(won)),
        );
        Ok(if won {
            result.done(true)
        } else if self.steps >= 25 {
            result.truncated()
        } else {
            result
        })
    }
    async fn admissible_actions(&mut self) -> Result<Vec<String>, EnvError> {
        self.done.ok_or(EnvError::NoEpisode)?;
        let takes = self
            .names("key", |k| self.reachable(k))
            .into_iter()
            .map(|k| format!("take {k}"));
        let opens = self
            .names("box", |b| !self.open[b])
            .into_iter()
            .map(|b| format!("open {b}"));
        Ok(std::iter::once("look".to_string())
            .chain(takes)
            .chain(opens)
            .collect())
    }
    async fn expert_action(&mut self) -> Result<Option<String>, EnvError> {
        let t = self.colors.len().wrapping_sub(1);
        Ok(match self.done.ok_or(EnvError::NoEpisode)? {
            true => None,
            false if self.open_task && self.key_at[t] == HELD => {
                Some(format!("open {} box", self.colors[t]))
            }
            false => Some(self.plan(t)),
        })
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    stepwire_sdk::harness::serve_stdio(Lockbox::default()).await
}
