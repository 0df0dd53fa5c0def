//! The agent-plane messages the soak sends, and the checks on what comes back.

use rand::Rng;
use serde_json::{json, Value};
use stepwire_sdk::protocol::{AgentStepParams, AgentStepResult, AugmentedState, Observation};

/// JSON-RPC error codes the soak expects (docs/protocol.md, "Error codes").
pub const INVALID_REQUEST: i64 = -32600;
pub const INVALID_PARAMS: i64 = -32602;
pub const REQUEST_CANCELLED: i64 = -32800;

pub fn request(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

pub fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

pub fn initialize(id: i64) -> Value {
    request(id, "initialize", json!({"protocolVersion": 1, "clientInfo": {"name": "stepwire-soak"}}))
}

pub fn initialized() -> Value {
    notification("initialized", json!({}))
}

pub fn cancel(id: i64) -> Value {
    notification("$/cancelRequest", json!({"id": id}))
}

pub fn shutdown(id: i64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "shutdown"})
}

/// `agent/step` params whose `state` is not an augmented state: answered -32602.
pub fn invalid_step(id: i64) -> Value {
    request(id, "agent/step", json!({"state": 3, "observation": {"text": "a room"}}))
}

/// An `agent/step` whose serialised form is larger than `limit` bytes.
pub fn oversized_step(id: i64, limit: usize) -> Value {
    let mut params = first_step("open the red box");
    params.observation.text = "x".repeat(limit + 1024);
    request(id, "agent/step", serde_json::to_value(params).expect("params serialise"))
}

/// A host's game as the soak plays it: the state the server handed back, fed in again with a
/// made-up observation, restarted every few steps so prompts stay small.
#[derive(Debug, Clone)]
pub struct Episode {
    state: AugmentedState,
    task: &'static str,
}

const TASKS: [&str; 3] = ["open the red box", "take the blue key", "find the gold key"];
const ACTIONS: [&str; 4] = ["look", "open red box", "take blue key", "go north"];
/// Steps before the episode starts over.
const EPISODE_STEPS: u64 = 8;

fn first_step(task: &str) -> AgentStepParams {
    AgentStepParams {
        state: AugmentedState::new(task),
        observation: Observation::text("You are in a small room. There is a red box.")
            .with_part("inventory", "nothing"),
        admissible_actions: Some(ACTIONS.iter().map(|a| a.to_string()).collect()),
        sampling: None,
        meta: None,
    }
}

impl Episode {
    pub fn new(rng: &mut impl Rng) -> Episode {
        let task = TASKS[rng.random_range(0..TASKS.len())];
        Episode { state: AugmentedState::new(task), task }
    }

    /// The params of the next step.
    pub fn params(&self, rng: &mut impl Rng) -> Value {
        let mut p = first_step(self.task);
        p.state = self.state.clone();
        if self.state.steps > 0 {
            p.observation = Observation::text(format!("Nothing much happens ({}).", rng.random_range(0..1000)));
        }
        serde_json::to_value(p).expect("params serialise")
    }

    /// Takes the server's next state (or starts over after a few steps).
    pub fn advance(&mut self, result: &AgentStepResult, rng: &mut impl Rng) {
        if result.next_state.steps >= EPISODE_STEPS {
            *self = Episode::new(rng);
        } else {
            self.state = result.next_state.clone();
        }
    }
}

/// What an answer was, as the soak classifies it.
#[derive(Debug)]
pub enum Answer {
    Result(Value),
    Error(i64, Value),
}

/// Splits a JSON-RPC response into result or error, checking the id; `Err` says what is wrong.
pub fn answer(msg: &Value, id: Option<i64>) -> Result<Answer, String> {
    let id_ok = match id {
        Some(id) => msg.get("id").and_then(Value::as_i64) == Some(id),
        None => msg.get("id") == Some(&Value::Null),
    };
    if !id_ok || msg.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(format!("an answer for id {id:?} expected, got {}", brief(msg)));
    }
    if let Some(result) = msg.get("result") {
        return Ok(Answer::Result(result.clone()));
    }
    match msg.pointer("/error/code").and_then(Value::as_i64) {
        Some(code) => Ok(Answer::Error(code, msg["error"].clone())),
        None => Err(format!("neither result nor error: {}", brief(msg))),
    }
}

/// A step's result, parsed as the protocol type.
pub fn step_result(result: Value) -> Result<AgentStepResult, String> {
    serde_json::from_value(result.clone()).map_err(|e| format!("not an agent/step result ({e}): {}", brief(&result)))
}

/// At most 200 characters of a message, for reports.
pub fn brief(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_step_is_over_the_limit_and_answers_are_checked() {
        assert!(oversized_step(1, 4096).to_string().len() > 4096);
        let ok = json!({"jsonrpc": "2.0", "id": 4, "result": null});
        assert!(matches!(answer(&ok, Some(4)), Ok(Answer::Result(Value::Null))));
        assert!(answer(&ok, Some(5)).is_err());
        let err = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "too big"}});
        assert!(matches!(answer(&err, None), Ok(Answer::Error(INVALID_REQUEST, _))));
    }
}
