//! A host that talks to a running `stepwire serve --listen` over WebSocket. It starts one on a
//! free port itself (a real host would connect to a long-running server, with a token in STEPWIRE_TOKEN or `--token-file`).
//!
//!     cargo run -p stepwire-example-hosts --bin host-ws -- --policy models/tiny-llama

use std::process::Stdio;

use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::ObjectParams;
use serde_json::Value;
use stepwire_example_hosts::{policy_arg, sibling_binary, start_game};
use stepwire_sdk::environment::Environment;
use stepwire_sdk::protocol::*;
use tokio::io::{AsyncBufReadExt, BufReader};

/// By-name params from any serialisable value.
fn params(value: impl serde::Serialize) -> anyhow::Result<ObjectParams> {
    let mut out = ObjectParams::new();
    if let Value::Object(map) = serde_json::to_value(value)? {
        for (k, v) in map {
            out.insert(&k, v)?;
        }
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut server = tokio::process::Command::new(sibling_binary("stepwire"))
        .args(["serve", "--listen", "127.0.0.1:0", "--policy", &policy_arg()])
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(server.stderr.take().expect("piped")).lines();
    let addr = loop {
        let line = lines.next_line().await?.ok_or_else(|| anyhow::anyhow!("stepwire exited"))?;
        if let Some(rest) = line.split("listening on ws://").nth(1) {
            break rest.split_whitespace().next().unwrap_or_default().to_string();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let ws = jsonrpsee::ws_client::WsClientBuilder::default().build(format!("ws://{addr}")).await?;
    let init = InitializeParams {
        protocol_version: PROTOCOL_VERSION,
        client_info: PeerInfo { name: "host-ws".into(), version: None },
        capabilities: ClientCapabilities::default(),
        meta: None,
    };
    let info: InitializeResult = ws.request("initialize", params(init)?).await?;
    println!("agent at ws://{addr}: {:?}", info.capabilities.agent);

    let mut game = start_game().await?;
    let start = game.reset(ResetParams { task: "open-box".into(), seed: Some(7), ..Default::default() }).await?;
    let mut state = AugmentedState::new(start.task_description);
    let mut observation = start.observation;
    for turn in 1..=20 {
        let admissible = game.admissible_actions().await?;
        let request =
            AgentStepParams { state, observation, admissible_actions: Some(admissible), sampling: None, meta: None };
        let step: AgentStepResult = ws.request("agent/step", params(request)?).await?;
        let outcome = game.step(&step.action).await?;
        println!("{turn:>2}. {} -> {} (tokens {:?})", step.action, outcome.observation.text, step.usage.total());
        state = step.next_state;
        observation = outcome.observation;
        if outcome.done {
            println!("episode over: won={} score={}", outcome.won, outcome.score);
            break;
        }
    }
    game.shutdown().await?;
    Ok(())
}
