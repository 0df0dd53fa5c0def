//! The harness lifecycle over an in-memory pair, spoken to in raw JSON-RPC.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use stepwire_sdk::environment::{EnvError, Environment};
use stepwire_sdk::harness::{serve, ServeOutcome};
use stepwire_sdk::protocol::*;
use stepwire_sdk::transport::Transport;
use tokio::task::JoinHandle;

const LIMIT: Duration = Duration::from_secs(5);

/// Counts steps; the action `slow` takes 30 s, `panic` panics.
struct Counter {
    steps: u32,
    live: bool,
}

#[async_trait]
impl Environment for Counter {
    fn capabilities(&self) -> EnvironmentCapabilities {
        EnvironmentCapabilities::named("counter").with_expert_action()
    }
    async fn tasks(&mut self) -> Result<Vec<TaskInfo>, EnvError> {
        Ok(vec![TaskInfo::new("count", [("train", 1)])])
    }
    async fn reset(&mut self, p: ResetParams) -> Result<ResetResult, EnvError> {
        if p.task != "count" {
            return Err(EnvError::UnknownTask(p.task));
        }
        (self.steps, self.live) = (0, true);
        Ok(ResetResult::new("e1", "count", Observation::text("0"), 0))
    }
    async fn step(&mut self, action: &str) -> Result<StepResult, EnvError> {
        if !self.live {
            return Err(EnvError::NoEpisode);
        }
        match action {
            "slow" => tokio::time::sleep(Duration::from_secs(30)).await,
            "panic" => panic!("env bug"),
            "inc" => {}
            _ => return Err(EnvError::InvalidAction(action.into())),
        }
        self.steps += 1;
        Ok(StepResult::new(Observation::text(self.steps.to_string()), 0.0, 0.0))
    }
    async fn expert_action(&mut self) -> Result<ExpertActionResult, EnvError> {
        Ok(ExpertActionResult::action("inc").with_subtask("count up"))
    }
}

struct Client {
    t: Transport,
    id: i64,
    server: JoinHandle<ServeOutcome>,
}

impl Client {
    fn start() -> Self {
        let (a, b) = Transport::pair();
        let server = tokio::spawn(serve(Counter { steps: 0, live: false }, a));
        Client { t: b, id: 0, server }
    }
    async fn send(&mut self, method: &str, params: Value) -> i64 {
        self.id += 1;
        let msg = json!({"jsonrpc": "2.0", "id": self.id, "method": method, "params": params});
        self.t.send(msg).await.unwrap();
        self.id
    }
    async fn recv(&mut self) -> Value {
        tokio::time::timeout(LIMIT, self.t.recv()).await.unwrap().unwrap().unwrap().unwrap()
    }
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params).await;
        let answer = self.recv().await;
        assert_eq!(answer["id"], json!(id), "{answer}");
        answer
    }
    async fn init(&mut self) -> Value {
        let init = json!({"protocolVersion": 1, "clientInfo": {"name": "test"}});
        let answer = self.call("initialize", init).await;
        self.notify("initialized", json!({})).await;
        answer
    }
    async fn notify(&mut self, method: &str, params: Value) {
        self.t.send(json!({"jsonrpc": "2.0", "method": method, "params": params})).await.unwrap();
    }
    async fn outcome(self) -> ServeOutcome {
        tokio::time::timeout(LIMIT, self.server).await.unwrap().unwrap()
    }
}

fn code(v: &Value) -> i64 {
    v["error"]["code"].as_i64().unwrap_or(0)
}

#[tokio::test]
async fn full_lifecycle() {
    let mut c = Client::start();
    assert_eq!(code(&c.call("env/tasks", json!({})).await), -32002);
    let bad = c.call("initialize", json!({"protocolVersion": 7, "clientInfo": {"name": "t"}})).await;
    assert_eq!(code(&bad), -31005);
    assert_eq!(bad["error"]["data"]["supported"], json!([1]));
    let init = c.init().await;
    assert_eq!(init["result"]["capabilities"]["environment"]["name"], json!("counter"));
    assert_eq!(code(&c.call("env/step", json!({"action": "inc"})).await), -31006);
    assert_eq!(code(&c.call("env/reset", json!({"task": 3})).await), -32602);
    assert_eq!(code(&c.call("env/reset", json!({"task": "nope"})).await), -31003);
    assert_eq!(code(&c.call("env/admissibleActions", json!({})).await), -32601);
    c.call("env/reset", json!({"task": "count"})).await;
    assert_eq!(code(&c.call("env/step", json!({"action": "dance"})).await), -31001);
    let step = c.call("env/step", json!({"action": "inc"})).await;
    assert_eq!(step["result"]["observation"]["text"], json!("1"));
    // The subtask the expert names travels with its action.
    let advice = c.call("env/expertAction", json!({})).await;
    assert_eq!(advice["result"], json!({"action": "inc", "subtask": "count up"}), "{advice}");
    let panicked = c.call("env/step", json!({"action": "panic"})).await;
    assert_eq!(code(&panicked), -32603);
    assert_eq!(c.call("shutdown", Value::Null).await["result"], Value::Null);
    assert_eq!(code(&c.call("env/tasks", json!({})).await), -32003);
    c.notify("exit", Value::Null).await;
    assert_eq!(c.outcome().await.exit_code, 0);
}

#[tokio::test]
async fn cancel_and_protocol_errors_are_answered_during_a_slow_env_call() {
    let mut c = Client::start();
    c.init().await;
    c.call("env/reset", json!({"task": "count"})).await;
    let slow = c.send("env/step", json!({"action": "slow"})).await;
    // While the env is busy: a protocol error is answered at once.
    assert_eq!(code(&c.call("no/such", json!({})).await), -32601);
    c.notify("$/cancelRequest", json!({"id": slow})).await;
    let cancelled = c.recv().await;
    assert_eq!((cancelled["id"].clone(), code(&cancelled)), (json!(slow), -32800));
    // The env is free again.
    let step = c.call("env/step", json!({"action": "inc"})).await;
    assert!(step.get("result").is_some(), "{step}");
}

#[tokio::test]
async fn exit_code_is_0_only_after_shutdown_whether_by_exit_or_end_of_input() {
    let mut c = Client::start();
    c.init().await;
    c.notify("exit", Value::Null).await;
    assert_eq!(c.outcome().await.exit_code, 1);

    let mut c = Client::start();
    c.init().await;
    c.t.close().await.unwrap();
    assert_eq!(c.outcome().await.exit_code, 1, "the client vanished without `shutdown`");

    let mut c = Client::start();
    c.init().await;
    c.call("shutdown", Value::Null).await;
    c.t.close().await.unwrap();
    assert_eq!(c.outcome().await.exit_code, 0);
}

#[test]
fn expert_advice_without_a_subtask_has_no_subtask_member() {
    // Written: no `subtask` key unless there is one (bridges and clients from before the field).
    assert_eq!(serde_json::to_value(ExpertActionResult::action("inc")).unwrap(), json!({"action": "inc"}));
    assert_eq!(serde_json::to_value(ExpertActionResult::none()).unwrap(), json!({"action": null}));
    let named = ExpertActionResult::action("inc").with_subtask("count up");
    assert_eq!(serde_json::to_value(&named).unwrap(), json!({"action": "inc", "subtask": "count up"}));
    // Read: absent or null is no subtask; a present one round-trips.
    let read = |v: Value| serde_json::from_value::<ExpertActionResult>(v).unwrap();
    assert_eq!(read(json!({"action": "inc"})), ExpertActionResult::action("inc"));
    assert_eq!(read(json!({"action": "inc", "subtask": null})), ExpertActionResult::action("inc"));
    assert_eq!(read(json!({"action": "inc", "subtask": "count up"})), named);
    assert!(serde_json::from_value::<ExpertActionResult>(json!({"action": "inc", "subtask": 3})).is_err());
}
