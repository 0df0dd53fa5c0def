//! A host that runs stepwire as a child process over stdio (LSP framing) and lets it play one
//! episode of its game, one `agent/step` per turn. The host keeps the augmented state; stepwire
//! keeps nothing between calls.
//!
//!     cargo run -p stepwire-example-hosts --bin host-stdio -- --policy models/tiny-llama

use std::process::Stdio;
use std::time::Duration;

use stepwire_example_hosts::{policy_arg, sibling_binary, start_game};
use stepwire_sdk::environment::Environment;
use stepwire_sdk::protocol::methods::{AgentStep, Exit, Initialize, Initialized, Shutdown};
use stepwire_sdk::protocol::*;
use stepwire_sdk::rpc::{Connection, ConnectionOptions};
use stepwire_sdk::transport::Transport;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut agent_process = tokio::process::Command::new(sibling_binary("stepwire"))
        .args(["serve", "--stdio", "--policy", &policy_arg()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let transport = Transport::child(&mut agent_process).expect("piped stdio");
    let options = ConnectionOptions {
        name: "agent".into(),
        request_timeout: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let agent = Connection::start_client(transport, options);
    let init = InitializeParams {
        protocol_version: PROTOCOL_VERSION,
        client_info: PeerInfo { name: "host-stdio".into(), version: None },
        capabilities: ClientCapabilities::default(),
        meta: None,
    };
    let info = agent.request::<Initialize>(init).await?;
    agent.notify::<Initialized>(InitializedParams::default())?;
    println!("agent: {:?}", info.capabilities.agent);

    let mut game = start_game().await?;
    let start = game.reset(ResetParams { task: "open-box".into(), seed: Some(7), ..Default::default() }).await?;
    println!("task: {}", start.task_description);
    let mut state = AugmentedState::new(start.task_description);
    let mut observation = start.observation;
    for turn in 1..=20 {
        let admissible = game.admissible_actions().await?;
        let params =
            AgentStepParams { state, observation, admissible_actions: Some(admissible), sampling: None, meta: None };
        let step = agent.request::<AgentStep>(params).await?;
        let outcome = game.step(&step.action).await?;
        println!(
            "{turn:>2}. [{}] {} -> {}",
            step.next_state.subtask.as_deref().unwrap_or(""),
            step.action,
            outcome.observation.text
        );
        state = step.next_state;
        observation = outcome.observation;
        if outcome.done {
            println!("episode over: won={} score={}", outcome.won, outcome.score);
            break;
        }
    }
    agent.request::<Shutdown>(None).await?;
    agent.notify::<Exit>(None)?;
    agent_process.wait().await?;
    game.shutdown().await?;
    Ok(())
}
