//! The agent server as a host sees it: the real `stepwire` binary over real pipes and sockets.

use jsonrpsee::core::client::ClientT;
use serde_json::{json, Value};
use stepwire_sdk::protocol::methods::*;
use stepwire_sdk::protocol::*;
use stepwire_sdk::rpc::{CallError, Connection, ConnectionOptions};
use stepwire_sdk::transport::Transport;
use support::{listen, listen_with_env, spawn, WAIT};

mod support;

fn initialize_params(version: u32) -> InitializeParams {
    InitializeParams {
        protocol_version: version,
        client_info: PeerInfo { name: "serve-test".into(), version: None },
        capabilities: ClientCapabilities::default(),
        meta: None,
    }
}

fn step_params() -> AgentStepParams {
    AgentStepParams {
        state: AugmentedState::new("open the red box"),
        observation: Observation::text("You are in a small room. There is a red box.")
            .with_part("inventory", "nothing"),
        admissible_actions: Some(vec!["look".into(), "open red box".into()]),
        sampling: None,
        meta: None,
    }
}

fn rpc_code(e: CallError) -> i64 {
    match e {
        CallError::Rpc(e) => e.code.code(),
        other => panic!("expected an error answer, got {other}"),
    }
}

#[tokio::test]
async fn stdio_server_runs_the_lifecycle_and_the_agent_methods() {
    let mut child = spawn(&["serve", "--stdio", "--policy", "rules"]);
    let transport = Transport::child(&mut child).unwrap();
    let options = ConnectionOptions { name: "host".into(), request_timeout: Some(WAIT), ..Default::default() };
    let conn = Connection::start_client(transport, options);

    let early = conn.request::<AgentStep>(step_params()).await.unwrap_err();
    assert_eq!(rpc_code(early), ErrorCode::SERVER_NOT_INITIALIZED.code());

    let wrong = conn.request::<Initialize>(initialize_params(99)).await.unwrap_err();
    assert_eq!(rpc_code(wrong), ErrorCode::UNSUPPORTED_PROTOCOL_VERSION.code());

    let init = conn.request::<Initialize>(initialize_params(PROTOCOL_VERSION)).await.unwrap();
    let agent = init.capabilities.agent.expect("agent capabilities");
    assert_eq!(agent.roles, Role::ALL.to_vec());
    conn.notify::<Initialized>(InitializedParams::default()).unwrap();

    // Two steps: the first plans and acts, the second updates progress for the pending action.
    let first = conn.request::<AgentStep>(step_params()).await.unwrap();
    assert_eq!(first.action, "open red box");
    assert_eq!(first.decisions.planned_subtask.as_deref(), Some("open the red box"));
    assert_eq!(first.next_state.pending_action.as_deref(), Some("open red box"));
    let mut next = step_params();
    next.state = first.next_state;
    next.observation = Observation::text("The red box is now open.");
    let second = conn.request::<AgentStep>(next).await.unwrap();
    assert!(second.decisions.planned_subtask.is_none());
    assert!(second.decisions.progress.unwrap().contains("open red box"));
    assert_eq!(second.next_state.steps, 2);

    let bad = conn.request_raw("agent/act", Some(json!({"subtask": 3})), None).await.unwrap_err();
    assert_eq!(rpc_code(bad), ErrorCode::INVALID_PARAMS.code());
    let unknown = conn.request_raw("agent/fly", None, None).await.unwrap_err();
    assert_eq!(rpc_code(unknown), ErrorCode::METHOD_NOT_FOUND.code());

    conn.request::<Shutdown>(None).await.unwrap();
    let after = conn.request::<AgentStep>(step_params()).await.unwrap_err();
    assert_eq!(rpc_code(after), ErrorCode::SHUTTING_DOWN.code());
    conn.notify::<Exit>(None).unwrap();
    let status = tokio::time::timeout(WAIT, child.wait()).await.expect("exits").unwrap();
    assert_eq!(status.code(), Some(0));
}

/// jsonrpsee's by-name params from a JSON object.
fn by_name(v: Value) -> jsonrpsee::core::params::ObjectParams {
    let mut params = jsonrpsee::core::params::ObjectParams::new();
    for (k, v) in v.as_object().expect("an object").clone() {
        params.insert(&k, v).unwrap();
    }
    params
}

#[tokio::test]
async fn websocket_and_http_serve_the_same_methods() {
    let (_child, addr) = listen(&[]).await;
    let ws = jsonrpsee::ws_client::WsClientBuilder::default().build(format!("ws://{addr}")).await.unwrap();
    let init: Value =
        ws.request("initialize", by_name(json!({"protocolVersion": 1, "clientInfo": {"name": "ws"}}))).await.unwrap();
    assert_eq!(init["capabilities"]["agent"]["policy"], "rules");
    let params = by_name(serde_json::to_value(step_params()).unwrap());
    let step: AgentStepResult = ws.request("agent/step", params).await.unwrap();
    assert_eq!(step.action, "open red box");

    let http = jsonrpsee::http_client::HttpClientBuilder::default().build(format!("http://{addr}")).unwrap();
    let act: ActResult = http
        .request(
            "agent/act",
            by_name(json!({"subtask": "open the box", "observation": {"text": "a box"},
                           "admissibleActions": ["open box"]})),
        )
        .await
        .unwrap();
    assert_eq!(act.action, "open box");
    let err = http.request::<Value, _>("agent/act", by_name(json!({"subtask": 1}))).await.unwrap_err();
    assert!(err.to_string().contains("agent/act"), "{err}");
}

#[tokio::test]
async fn bearer_token_is_required_when_set() {
    let (_child, addr) = listen_with_env(&[], &[("STEPWIRE_TOKEN", "s3cret")]).await;
    let refused = jsonrpsee::ws_client::WsClientBuilder::default().build(format!("ws://{addr}")).await;
    assert!(refused.is_err(), "a WebSocket without the token must be refused");

    let mut headers = jsonrpsee::http_client::HeaderMap::new();
    headers.insert("authorization", "Bearer s3cret".parse().unwrap());
    let ws = jsonrpsee::ws_client::WsClientBuilder::default()
        .set_headers(headers)
        .build(format!("ws://{addr}"))
        .await
        .expect("the right token is let in");
    let _: Value =
        ws.request("initialize", by_name(json!({"protocolVersion": 1, "clientInfo": {"name": "ws"}}))).await.unwrap();
    let act: ActResult =
        ws.request("agent/act", by_name(json!({"subtask": "s", "observation": {"text": "t"}}))).await.unwrap();
    assert_eq!(act.action, "look");
}
