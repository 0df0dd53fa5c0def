//! counter: the conformance environment of `tests/sdk-cases/cases.json`, whose header specifies
//! it; `bridges/python/tests/envs/counter.py` is the same game on the Python SDK. Both SDKs must
//! answer every case byte for byte alike (up to the fields a case leaves open).
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use stepwire_sdk::environment::{EnvError, Environment};
use stepwire_sdk::protocol::*;

#[derive(Default)]
struct Counter {
    n: u64,
    target: u64,
}

impl Counter {
    fn observe(&self) -> Observation {
        Observation::text(format!("count {}", self.n))
    }
}

#[async_trait]
impl Environment for Counter {
    fn capabilities(&self) -> EnvironmentCapabilities {
        let caps = EnvironmentCapabilities::named("counter").with_admissible_actions().with_expert_action();
        EnvironmentCapabilities { reset_options: vec!["start".into()], ..caps.with_seeded_reset() }
    }
    async fn tasks(&mut self) -> Result<Vec<TaskInfo>, EnvError> {
        Ok(vec![TaskInfo::new("count", [("train", 3), ("test", 1), ("empty", 0)])])
    }
    async fn reset(&mut self, p: ResetParams) -> Result<ResetResult, EnvError> {
        let variation = p.variation.unwrap_or(0);
        let start = match p.options.get("start") {
            None => 0,
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or(0),
            Some(_) => return Err(EnvError::InvalidParams("the reset option `start` must be a whole number".into())),
        };
        *self = Counter { n: start, target: start + variation + 2 };
        let task = format!("count to {}", self.target);
        Ok(ResetResult::new(format!("count-{variation}"), task, self.observe(), variation)
            .with_max_score(self.target as f64))
    }
    async fn step(&mut self, action: &str) -> Result<StepResult, EnvError> {
        match action {
            "inc" => self.n += 1,
            "sleep" => tokio::time::sleep(Duration::from_secs(2)).await,
            "crash" => return Err(EnvError::Crashed("crashing on purpose".into())),
            _ => return Err(EnvError::InvalidAction(format!("`{action}`: the actions are inc, sleep and crash"))),
        }
        let won = self.n >= self.target;
        let reward = if action == "inc" { 1.0 } else { 0.0 };
        let mut result = StepResult::new(self.observe(), reward, self.n as f64);
        (result.done, result.won) = (won, won);
        Ok(result)
    }
    async fn admissible_actions(&mut self) -> Result<Vec<String>, EnvError> {
        Ok(vec!["inc".into(), "sleep".into(), "crash".into()])
    }
    async fn expert_action(&mut self) -> Result<ExpertActionResult, EnvError> {
        Ok(ExpertActionResult::action("inc").with_subtask("count up"))
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    stepwire_sdk::harness::serve_stdio(Counter::default()).await
}
