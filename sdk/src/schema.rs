//! JSON Schema generation from the protocol types (JSON Schema 2020-12).
//!
//! `stepwire schema` writes these to `schemas/`; a test fails when the checked-in files differ.
//! One file per message payload (params or result of a method), one for the envelope, one for a
//! recording line, and one union per plane that names every message the plane may carry.

use std::collections::BTreeMap;

use schemars::{generate::SchemaSettings, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::protocol::methods::*;
use crate::protocol::*;

/// The id of every generated schema: `https://stepwire.dev/schemas/v1/<file>`.
pub const SCHEMA_BASE: &str = "https://stepwire.dev/schemas/v1/";

fn root<T: JsonSchema>(file: &str) -> Value {
    let mut schema: Schema = SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<T>();
    let obj = schema.ensure_object();
    obj.insert("$id".into(), Value::String(format!("{SCHEMA_BASE}{file}")));
    // Put `$schema` and `$id` first so the files read well.
    let mut ordered = Map::new();
    for key in ["$schema", "$id", "title", "description"] {
        if let Some(v) = obj.remove(key) {
            ordered.insert(key.into(), v);
        }
    }
    ordered.extend(std::mem::take(obj));
    Value::Object(ordered)
}

/// The file stem of a method's payload schema: `env/reset` → `env.reset`, `$/cancelRequest` →
/// `cancelRequest`.
pub fn method_stem(method: &str) -> String {
    method.trim_start_matches("$/").replace('/', ".")
}

/// A message on one plane, for the plane's union schema.
struct PlaneEntry {
    method: &'static str,
    params: Schema,
    result: Option<Schema>,
}

struct Plane {
    generator: SchemaGenerator,
    entries: Vec<PlaneEntry>,
}

impl Plane {
    fn new() -> Self {
        Plane { generator: SchemaSettings::draft2020_12().into_generator(), entries: Vec::new() }
    }

    fn request<M: RequestMethod>(&mut self)
    where
        M::Params: JsonSchema,
        M::Result: JsonSchema,
    {
        let params = self.generator.subschema_for::<M::Params>();
        let result = self.generator.subschema_for::<M::Result>();
        self.entries.push(PlaneEntry { method: M::NAME, params, result: Some(result) });
    }

    fn notification<M: NotificationMethod>(&mut self)
    where
        M::Params: JsonSchema,
    {
        let params = self.generator.subschema_for::<M::Params>();
        self.entries.push(PlaneEntry { method: M::NAME, params, result: None });
    }

    fn lifecycle(mut self) -> Self {
        self.request::<Initialize>();
        self.notification::<Initialized>();
        self.request::<Shutdown>();
        self.notification::<Exit>();
        self.notification::<CancelRequest>();
        self.notification::<Progress>();
        self.notification::<LogMessage>();
        self
    }

    /// A union: any request or notification of the plane with its typed params, or any response
    /// whose result is one of the plane's results, or an error.
    fn into_schema(mut self, file: &str, title: &str) -> Value {
        let id = self.generator.subschema_for::<RequestId>();
        let error = self.generator.subschema_for::<ResponseError>();
        let mut calls = Vec::new();
        let mut results = Vec::new();
        for e in &self.entries {
            let mut props = json!({
                "jsonrpc": { "const": "2.0" },
                "method": { "const": e.method },
                "params": e.params,
            });
            let mut required = vec!["jsonrpc", "method"];
            if let Some(result) = &e.result {
                props["id"] = id.clone().into();
                required.push("id");
                results.push(result.clone().to_value());
            }
            calls.push(json!({
                "title": e.method,
                "type": "object",
                "properties": props,
                "required": required,
            }));
        }
        let response = json!({
            "title": "response",
            "type": "object",
            "properties": {
                "jsonrpc": { "const": "2.0" },
                "id": { "anyOf": [id.clone().to_value(), { "type": "null" }] },
                "result": { "anyOf": results },
                "error": error.to_value(),
            },
            "required": ["jsonrpc", "id"],
            "oneOf": [ { "required": ["result"] }, { "required": ["error"] } ],
        });
        calls.push(response);
        let defs = self.generator.take_definitions(true);
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": format!("{SCHEMA_BASE}{file}"),
            "title": title,
            "oneOf": calls,
            "$defs": defs,
        })
    }
}

/// Every generated schema, keyed by its file name under `schemas/`.
pub fn generate() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut add = |file: String, v: Value| {
        out.insert(file, v);
    };
    macro_rules! req {
        ($($m:ty),*) => {$(
            let stem = method_stem(<$m>::NAME);
            add(format!("{stem}.params.json"), root::<<$m as RequestMethod>::Params>(&format!("{stem}.params.json")));
            add(format!("{stem}.result.json"), root::<<$m as RequestMethod>::Result>(&format!("{stem}.result.json")));
        )*};
    }
    macro_rules! note {
        ($($m:ty),*) => {$(
            let stem = method_stem(<$m>::NAME);
            add(format!("{stem}.params.json"), root::<<$m as NotificationMethod>::Params>(&format!("{stem}.params.json")));
        )*};
    }
    req!(Initialize, EnvTasks, EnvReset, EnvStep, EnvAdmissibleActions, EnvExpertAction);
    req!(AgentPlan, AgentAct, AgentProgress, AgentStep);
    note!(Initialized, CancelRequest, Progress, LogMessage);
    add("jsonrpc.message.json".into(), root::<Message>("jsonrpc.message.json"));
    add("record.line.json".into(), root::<RecordLine>("record.line.json"));
    add(
        "error.unsupportedVersion.data.json".into(),
        root::<UnsupportedVersionData>("error.unsupportedVersion.data.json"),
    );

    let mut env = Plane::new().lifecycle();
    env.request::<EnvTasks>();
    env.request::<EnvReset>();
    env.request::<EnvStep>();
    env.request::<EnvAdmissibleActions>();
    env.request::<EnvExpertAction>();
    add(
        "environment-plane.json".into(),
        env.into_schema("environment-plane.json", "stepwire environment plane message"),
    );

    let mut agent = Plane::new().lifecycle();
    agent.request::<AgentPlan>();
    agent.request::<AgentAct>();
    agent.request::<AgentProgress>();
    agent.request::<AgentStep>();
    add("agent-plane.json".into(), agent.into_schema("agent-plane.json", "stepwire agent plane message"));
    out
}

/// The files as they should be written: pretty JSON with a trailing newline.
pub fn render(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("JSON values serialise");
    s.push('\n');
    s
}

/// Differences between `dir` and what the types produce: missing, changed and stray files.
pub fn drift(dir: &std::path::Path) -> std::io::Result<Vec<String>> {
    let want = generate();
    let mut problems = Vec::new();
    for (file, value) in &want {
        match std::fs::read_to_string(dir.join(file)) {
            Ok(have) if have == render(value) => {}
            Ok(_) => problems.push(format!("{file}: differs from the protocol types")),
            Err(_) => problems.push(format!("{file}: missing")),
        }
    }
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().to_string();
        if name.ends_with(".json") && !want.contains_key(&name) {
            problems.push(format!("{name}: not produced by the protocol types (stale?)"));
        }
    }
    Ok(problems)
}

/// Writes every schema into `dir`, removing stale generated files. Returns the files written.
pub fn write_all(dir: &std::path::Path) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let want = generate();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
        if name.ends_with(".json") && !want.contains_key(&name) {
            std::fs::remove_file(&path)?;
        }
    }
    for (file, value) in &want {
        std::fs::write(dir.join(file), render(value))?;
    }
    Ok(want.into_keys().collect())
}

/// Parses `value` as the Rust type behind schema `stem` and serialises it again: how the types
/// read and write each example. `None` when `stem` names no payload type (the plane unions).
pub fn roundtrip(stem: &str, value: Value) -> Option<Result<Value, serde_json::Error>> {
    fn via<T: serde::de::DeserializeOwned + serde::Serialize>(v: Value) -> Result<Value, serde_json::Error> {
        serde_json::to_value(serde_json::from_value::<T>(v)?)
    }
    macro_rules! table {
        ($($stem:literal => $ty:ty),* $(,)?) => {
            match stem {
                $($stem => Some(via::<$ty>(value)),)*
                _ => None,
            }
        };
    }
    table! {
        "initialize.params" => InitializeParams,
        "initialize.result" => InitializeResult,
        "initialized.params" => InitializedParams,
        "cancelRequest.params" => CancelParams,
        "progress.params" => ProgressParams,
        "logMessage.params" => LogMessageParams,
        "env.tasks.params" => TasksParams,
        "env.tasks.result" => TasksResult,
        "env.reset.params" => ResetParams,
        "env.reset.result" => ResetResult,
        "env.step.params" => StepParams,
        "env.step.result" => StepResult,
        "env.admissibleActions.params" => AdmissibleActionsParams,
        "env.admissibleActions.result" => AdmissibleActionsResult,
        "env.expertAction.params" => ExpertActionParams,
        "env.expertAction.result" => ExpertActionResult,
        "agent.plan.params" => PlanParams,
        "agent.plan.result" => PlanResult,
        "agent.act.params" => ActParams,
        "agent.act.result" => ActResult,
        "agent.progress.params" => ProgressUpdateParams,
        "agent.progress.result" => ProgressUpdateResult,
        "agent.step.params" => AgentStepParams,
        "agent.step.result" => AgentStepResult,
        "jsonrpc.message" => Message,
        "record.line" => RecordLine,
        "error.unsupportedVersion.data" => UnsupportedVersionData,
        "environment-plane" => Message,
        "agent-plane" => Message,
    }
}
