//! The battery. Each check gets a fresh bridge process, so one failure cannot hide another.

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};
use stepwire_sdk::framing::frame_bytes;
use stepwire_sdk::protocol::methods::{
    CancelRequest, EnvAdmissibleActions, EnvExpertAction, EnvReset, EnvStep, EnvTasks, Initialize, NotificationMethod,
    RequestMethod, Shutdown,
};
use stepwire_sdk::protocol::ErrorCode;

use super::schema::Kind;
use super::session::{initialize_params, to_answer, Answer, Session};

/// A check's verdict when it did not fail.
pub enum Verdict {
    Pass(String),
    Skip(String),
}

/// Every check, in run order, with what it verifies.
pub const CHECKS: &[(&str, &str)] = &[
    ("initialize-required", "a request before `initialize` gets -32002"),
    ("version-mismatch", "an unknown protocol version gets -31005 with data.supported"),
    ("initialize", "`initialize` answers a valid result with environment capabilities"),
    ("tasks", "`env/tasks` lists tasks, each with splits"),
    ("reset-step", "`env/reset` then one `env/step` give valid results"),
    ("advice-accepted", "the expert's action and admissible actions are accepted by `env/step`"),
    ("invalid-action", "a nonsense action gets -31001 or a valid step result"),
    ("unknown-method", "an unknown method gets -32601"),
    ("invalid-params", "params of the wrong shape get -32602"),
    ("malformed-frame", "a frame with bad JSON gets -32700 and the bridge goes on"),
    ("oversized-frame", "a 64 MiB Content-Length gets -32600 (or a clean close), never a hang"),
    ("cancel", "`$/cancelRequest` leaves exactly one answer per request"),
    ("seeded-reset", "the same reset and actions give the same episode"),
    ("shutdown-exit", "`shutdown` then `exit` ends the process with code 0"),
];

pub async fn run(name: &str, s: &mut Session) -> anyhow::Result<Verdict> {
    match name {
        "initialize-required" => initialize_required(s).await,
        "version-mismatch" => version_mismatch(s).await,
        "initialize" => initialize(s).await,
        "tasks" => tasks(s).await,
        "reset-step" => reset_step(s).await,
        "advice-accepted" => advice_accepted(s).await,
        "invalid-action" => invalid_action(s).await,
        "unknown-method" => unknown_method(s).await,
        "invalid-params" => invalid_params(s).await,
        "malformed-frame" => malformed_frame(s).await,
        "oversized-frame" => oversized_frame(s).await,
        "cancel" => cancel(s).await,
        "seeded-reset" => seeded_reset(s).await,
        "shutdown-exit" => shutdown_exit(s).await,
        other => bail!("no check named `{other}`"),
    }
}

fn expect_code(answer: &Answer, code: ErrorCode, what: &str) -> anyhow::Result<()> {
    ensure!(
        answer.code() == Some(code.code()),
        "{what}: expected error {} ({}), got {}",
        code.code(),
        code.name(),
        answer.describe()
    );
    Ok(())
}

/// What an initialized bridge offers: capabilities and the first task's reset params.
struct Setup {
    caps: Value,
    reset: Value,
}

async fn setup(s: &mut Session) -> anyhow::Result<Setup> {
    let init = s.initialize().await?;
    let caps = init.pointer("/capabilities/environment").cloned().unwrap_or(Value::Null);
    let tasks = s.call(EnvTasks::NAME, Some(json!({}))).await?;
    let task = tasks.pointer("/tasks/0").context("`env/tasks` listed no task")?;
    let id = task.get("id").and_then(Value::as_str).context("task without id")?;
    let split = task.pointer("/splits/0/name").and_then(Value::as_str).unwrap_or("train");
    let reset = json!({"task": id, "split": split, "variation": 0, "seed": 0});
    Ok(Setup { caps, reset })
}

fn announces(caps: &Value, name: &str) -> bool {
    caps.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// An admissible action if announced, else the expert's, else `look`.
async fn pick_action(s: &mut Session, caps: &Value) -> anyhow::Result<String> {
    if announces(caps, "admissibleActions") {
        let r = s.call(EnvAdmissibleActions::NAME, Some(json!({}))).await?;
        if let Some(a) = r.pointer("/actions/0").and_then(Value::as_str) {
            return Ok(a.to_string());
        }
    }
    if announces(caps, "expertAction") {
        let r = s.call(EnvExpertAction::NAME, Some(json!({}))).await?;
        if let Some(a) = r.get("action").and_then(Value::as_str) {
            return Ok(a.to_string());
        }
    }
    Ok("look".into())
}

async fn initialize_required(s: &mut Session) -> anyhow::Result<Verdict> {
    let answer = s.request(EnvTasks::NAME, Some(json!({}))).await?;
    expect_code(&answer, ErrorCode::SERVER_NOT_INITIALIZED, "`env/tasks` before `initialize`")?;
    Ok(Verdict::Pass("-32002".into()))
}

async fn version_mismatch(s: &mut Session) -> anyhow::Result<Verdict> {
    let answer = s.request(Initialize::NAME, Some(initialize_params(9999))).await?;
    expect_code(&answer, ErrorCode::UNSUPPORTED_PROTOCOL_VERSION, "protocol version 9999")?;
    let Answer::Error { data: Some(data), .. } = &answer else {
        bail!("-31005 without `data`");
    };
    s.schemas().validate(Kind::UnsupportedVersionData, data).map_err(anyhow::Error::msg)?;
    let supported = data.get("supported").and_then(Value::as_array).cloned().unwrap_or_default();
    ensure!(!supported.is_empty(), "data.supported is empty");
    ensure!(!supported.contains(&json!(9999)), "data.supported lists the rejected version");
    Ok(Verdict::Pass(format!("-31005, supported {}", Value::Array(supported))))
}

async fn initialize(s: &mut Session) -> anyhow::Result<Verdict> {
    let init = s.initialize().await?;
    ensure!(init.get("protocolVersion") == Some(&json!(1)), "protocolVersion is not 1");
    let env = init.pointer("/capabilities/environment").context("no capabilities.environment")?;
    let name = env.get("name").and_then(Value::as_str).unwrap_or("");
    ensure!(!name.is_empty(), "capabilities.environment.name is empty");
    Ok(Verdict::Pass(format!("environment `{name}`")))
}

async fn tasks(s: &mut Session) -> anyhow::Result<Verdict> {
    s.initialize().await?;
    let r = s.call(EnvTasks::NAME, Some(json!({}))).await?;
    let tasks = r.get("tasks").and_then(Value::as_array).context("no tasks array")?;
    ensure!(!tasks.is_empty(), "no tasks listed");
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let id = t.get("id").and_then(Value::as_str).unwrap_or("");
        ensure!(ids.insert(id.to_string()), "task id `{id}` listed twice");
        let splits = t.get("splits").and_then(Value::as_array).map_or(0, Vec::len);
        ensure!(splits > 0, "task `{id}` has no splits");
    }
    Ok(Verdict::Pass(format!("{} task(s)", tasks.len())))
}

async fn reset_step(s: &mut Session) -> anyhow::Result<Verdict> {
    let setup = setup(s).await?;
    s.call(EnvReset::NAME, Some(setup.reset.clone())).await?;
    let action = pick_action(s, &setup.caps).await?;
    s.call(EnvStep::NAME, Some(json!({"action": action}))).await?;
    Ok(Verdict::Pass(format!("reset {}, stepped `{action}`", setup.reset)))
}

/// What the bridge advises must be playable: a policy constrained to the admissible actions, or
/// a recording of the expert, would otherwise fail on the bridge's own word. One reset (they can
/// be slow), then three steps, each taking advice fresh for the state it is in: the expert's
/// action first, then the last and the middle admissible action.
async fn advice_accepted(s: &mut Session) -> anyhow::Result<Verdict> {
    let setup = setup(s).await?;
    let (expert, admissible) = (announces(&setup.caps, "expertAction"), announces(&setup.caps, "admissibleActions"));
    if !expert && !admissible {
        return Ok(Verdict::Skip("announces neither expert nor admissible actions".into()));
    }
    s.call(EnvReset::NAME, Some(setup.reset.clone())).await?;
    let mut tried = Vec::new();
    for turn in 0..3 {
        let (action, what) = if expert && (turn == 0 || !admissible) {
            let advice = s.call(EnvExpertAction::NAME, Some(json!({}))).await?;
            match advice.get("action").and_then(Value::as_str) {
                Some(a) => (a.to_string(), "the expert's action"),
                None => break,
            }
        } else {
            let list = s.call(EnvAdmissibleActions::NAME, Some(json!({}))).await?;
            let actions: Vec<&str> = list
                .get("actions")
                .and_then(Value::as_array)
                .map_or(vec![], |a| a.iter().filter_map(Value::as_str).collect());
            ensure!(!actions.is_empty(), "`env/admissibleActions` listed no action in a live episode");
            let pick = if turn % 2 == 1 { actions.len() - 1 } else { actions.len() / 2 };
            (actions[pick].to_string(), "an admissible action")
        };
        let done = step_accepted(s, &action, what).await?;
        tried.push(format!("`{action}`"));
        if done {
            break;
        }
    }
    Ok(Verdict::Pass(format!("stepped {}", tried.join(", "))))
}

/// Steps `action`, which the bridge advised; whether the episode ended.
async fn step_accepted(s: &mut Session, action: &str, what: &str) -> anyhow::Result<bool> {
    match s.request(EnvStep::NAME, Some(json!({"action": action}))).await? {
        Answer::Result(r) => Ok(r.get("done").and_then(Value::as_bool).unwrap_or(false)),
        a => bail!("{what} `{action}` was refused by `env/step`: {}", a.describe()),
    }
}

async fn invalid_action(s: &mut Session) -> anyhow::Result<Verdict> {
    let setup = setup(s).await?;
    s.call(EnvReset::NAME, Some(setup.reset)).await?;
    let answer = s.request(EnvStep::NAME, Some(json!({"action": "zq!xv 42 flibber the"}))).await?;
    match answer {
        Answer::Result(_) => Ok(Verdict::Pass("answered with a step result".into())),
        a if a.code() == Some(ErrorCode::INVALID_ACTION.code()) => Ok(Verdict::Pass("-31001".into())),
        a => bail!("expected -31001 or a step result, got {}", a.describe()),
    }
}

async fn unknown_method(s: &mut Session) -> anyhow::Result<Verdict> {
    s.initialize().await?;
    let answer = s.request("env/noSuchMethod", Some(json!({}))).await?;
    expect_code(&answer, ErrorCode::METHOD_NOT_FOUND, "`env/noSuchMethod`")?;
    Ok(Verdict::Pass("-32601".into()))
}

async fn invalid_params(s: &mut Session) -> anyhow::Result<Verdict> {
    let setup = setup(s).await?;
    let answer = s.request(EnvReset::NAME, Some(json!({"task": 42}))).await?;
    expect_code(&answer, ErrorCode::INVALID_PARAMS, "`env/reset` with a numeric task")?;
    s.call(EnvReset::NAME, Some(setup.reset)).await?;
    let answer = s.request(EnvStep::NAME, Some(json!({"actoin": "look"}))).await?;
    expect_code(&answer, ErrorCode::INVALID_PARAMS, "`env/step` without `action`")?;
    Ok(Verdict::Pass("-32602 for both".into()))
}

async fn malformed_frame(s: &mut Session) -> anyhow::Result<Verdict> {
    s.initialize().await?;
    s.send_raw(&frame_bytes(br#"{"jsonrpc": "2.0", "id": 77, "method": "env/tas"#)).await?;
    let answer = s.answer_to(&Value::Null).await?;
    expect_code(&answer, ErrorCode::PARSE_ERROR, "a frame with bad JSON")?;
    s.call(EnvTasks::NAME, Some(json!({}))).await.context("no answer after the bad frame")?;
    Ok(Verdict::Pass("-32700, then answered `env/tasks`".into()))
}

async fn oversized_frame(s: &mut Session) -> anyhow::Result<Verdict> {
    const LEN: usize = 64 * 1024 * 1024 + 1;
    s.initialize().await?;
    // The header first, with only two body bytes: a bridge must answer from the header alone.
    s.send_raw(format!("Content-Length: {LEN}\r\n\r\n{{}}").as_bytes()).await?;
    let first = tokio::time::timeout(Duration::from_secs(10), s.recv()).await;
    let first = match first {
        Err(_) => bail!("no answer within 10 s to a 64 MiB Content-Length (it must not wait for the body)"),
        Ok(r) => r?,
    };
    let Some(msg) = first else {
        return Ok(Verdict::Pass("closed its output (no -32600)".into()));
    };
    let answer = to_answer(&msg);
    ensure!(msg.get("id") == Some(&Value::Null), "the answer's id is not null: {msg}");
    expect_code(&answer, ErrorCode::INVALID_REQUEST, "a 64 MiB frame")?;
    // Then the rest of the body: a bridge that discards it resynchronises; closing is fine too.
    let chunk = vec![b' '; 1024 * 1024];
    let mut left = LEN - 2;
    while left > 0 {
        let n = left.min(chunk.len());
        if s.send_raw(&chunk[..n]).await.is_err() {
            return Ok(Verdict::Pass("-32600, then closed".into()));
        }
        left -= n;
    }
    let id = s.send_request(EnvTasks::NAME, Some(json!({}))).await;
    if id.is_err() {
        return Ok(Verdict::Pass("-32600, then closed".into()));
    }
    match tokio::time::timeout(Duration::from_secs(10), s.recv()).await {
        Ok(Ok(None)) => Ok(Verdict::Pass("-32600, then closed".into())),
        Ok(Ok(Some(m))) if m.get("result").is_some() => Ok(Verdict::Pass("-32600, then resynchronised".into())),
        Ok(Ok(Some(m))) => bail!("after the oversized body, `env/tasks` got {m}"),
        Ok(Err(e)) => Err(e),
        Err(_) => bail!("after the oversized body the bridge neither answered nor closed"),
    }
}

async fn cancel(s: &mut Session) -> anyhow::Result<Verdict> {
    let setup = setup(s).await?;
    s.call(EnvReset::NAME, Some(setup.reset)).await?;
    let action = pick_action(s, &setup.caps).await?;
    // In flight (or just finished): exactly one answer, a step result or -32800.
    let step = s.send_request(EnvStep::NAME, Some(json!({"action": action}))).await?;
    s.notify(CancelRequest::NAME, Some(json!({"id": step}))).await?;
    let first = match s.answer_to(&json!(step)).await? {
        Answer::Result(v) => {
            s.schemas().validate(Kind::ResultOf(EnvStep::NAME), &v).map_err(anyhow::Error::msg)?;
            "finished first"
        }
        a if a.code() == Some(ErrorCode::REQUEST_CANCELLED.code()) => "-32800",
        a => bail!("cancelled `env/step` got {}", a.describe()),
    };
    // Finished: cancelling it must not produce a second answer.
    let tasks = s.send_request(EnvTasks::NAME, Some(json!({}))).await?;
    s.answer_to(&json!(tasks)).await?;
    s.notify(CancelRequest::NAME, Some(json!({"id": tasks}))).await?;
    let probe = s.send_request(EnvTasks::NAME, Some(json!({}))).await?;
    loop {
        let msg = s.recv().await?.context("the bridge closed its output after a cancel")?;
        let id = msg.get("id");
        ensure!(id != Some(&json!(step)) && id != Some(&json!(tasks)), "a request was answered twice: {msg}");
        if id == Some(&json!(probe)) {
            break;
        }
    }
    Ok(Verdict::Pass(format!("in flight: {first}; finished: no second answer")))
}

/// Plays up to `n` steps, choosing each action the same way; returns actions and results.
async fn play(
    s: &mut Session,
    caps: &Value,
    reset: &Value,
    actions: Option<&[String]>,
) -> anyhow::Result<(Value, Vec<String>, Vec<Value>)> {
    let start = s.call(EnvReset::NAME, Some(reset.clone())).await?;
    let (mut taken, mut results) = (Vec::new(), Vec::new());
    for i in 0..5 {
        let action = match actions {
            Some(list) => match list.get(i) {
                Some(a) => a.clone(),
                None => break,
            },
            None => replay_action(s, caps, i).await?,
        };
        let r = s.call(EnvStep::NAME, Some(json!({"action": action}))).await?;
        let done = r.get("done").and_then(Value::as_bool).unwrap_or(false);
        taken.push(action);
        results.push(strip_meta(r));
        if done {
            break;
        }
    }
    Ok((strip_meta(start), taken, results))
}

/// The expert's action when there is one (it changes the state), else a rotating admissible one.
async fn replay_action(s: &mut Session, caps: &Value, i: usize) -> anyhow::Result<String> {
    if announces(caps, "expertAction") {
        let r = s.call(EnvExpertAction::NAME, Some(json!({}))).await?;
        if let Some(a) = r.get("action").and_then(Value::as_str) {
            return Ok(a.to_string());
        }
    }
    if announces(caps, "admissibleActions") {
        let r = s.call(EnvAdmissibleActions::NAME, Some(json!({}))).await?;
        let list = r.get("actions").and_then(Value::as_array).cloned().unwrap_or_default();
        if let Some(a) = list.get(i % list.len().max(1)).and_then(Value::as_str) {
            return Ok(a.to_string());
        }
    }
    Ok("look".into())
}

fn strip_meta(mut v: Value) -> Value {
    if let Some(obj) = v.as_object_mut() {
        obj.remove("_meta");
        obj.remove("episodeId");
    }
    v
}

async fn seeded_reset(s: &mut Session) -> anyhow::Result<Verdict> {
    let setup = setup(s).await?;
    if !announces(&setup.caps, "seededReset") {
        return Ok(Verdict::Skip("`seededReset` not announced".into()));
    }
    let mut reset = setup.reset.clone();
    reset["seed"] = json!(12345);
    let (start1, actions, steps1) = play(s, &setup.caps, &reset, None).await?;
    let (start2, _, steps2) = play(s, &setup.caps, &reset, Some(&actions)).await?;
    ensure!(start1 == start2, "reset differs: {start1} vs {start2}");
    for (i, (a, b)) in steps1.iter().zip(&steps2).enumerate() {
        ensure!(a == b, "step {} (`{}`) differs: {a} vs {b}", i + 1, actions[i]);
    }
    ensure!(steps1.len() == steps2.len(), "the replay ended at a different step");
    Ok(Verdict::Pass(format!("{} step(s) replayed identically", steps1.len())))
}

async fn shutdown_exit(s: &mut Session) -> anyhow::Result<Verdict> {
    s.initialize().await?;
    let answer = s.request(Shutdown::NAME, None).await?;
    ensure!(matches!(answer, Answer::Result(Value::Null)), "`shutdown` got {}", answer.describe());
    let after = s.request(EnvTasks::NAME, Some(json!({}))).await?;
    let code = after.code();
    ensure!(
        code == Some(ErrorCode::SHUTTING_DOWN.code()) || code == Some(ErrorCode::INVALID_REQUEST.code()),
        "a request after `shutdown` got {} (expected -32003 or -32600)",
        after.describe()
    );
    s.notify("exit", None).await?;
    let status = s.wait_exit(Duration::from_secs(5)).await.context("the process did not exit within 5 s of `exit`")?;
    ensure!(status.code() == Some(0), "exited with {status} (expected code 0)");
    Ok(Verdict::Pass("exited 0".into()))
}
