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
/// A message on one plane, for the plane's union schema.
struct PlaneEntry {
    method: &'static str,
    params: Schema,
    result: Option<Schema>,
}

/// One plane's message union: the lifecycle methods and the plane's own.
struct PlaneUnion {
    plane: methods::Plane,
    generator: SchemaGenerator,
    entries: Vec<PlaneEntry>,
}

impl PlaneUnion {
    fn of(plane: methods::Plane) -> Self {
        let mut union =
            PlaneUnion { plane, generator: SchemaSettings::draft2020_12().into_generator(), entries: Vec::new() };
        visit_methods(&mut union);
        union
    }

    fn serves(&self, info: &MethodInfo) -> bool {
        info.plane == self.plane || info.plane == methods::Plane::Lifecycle
    }
}

impl MethodVisitor for PlaneUnion {
    fn request<M: RequestMethod>(&mut self, info: &MethodInfo) {
        if self.serves(info) {
            let params = self.generator.subschema_for::<M::Params>();
            let result = self.generator.subschema_for::<M::Result>();
            self.entries.push(PlaneEntry { method: M::NAME, params, result: Some(result) });
        }
    }

    fn notification<N: NotificationMethod>(&mut self, info: &MethodInfo) {
        if self.serves(info) {
            let params = self.generator.subschema_for::<N::Params>();
            self.entries.push(PlaneEntry { method: N::NAME, params, result: None });
        }
    }
}

/// Each method's own params and result files.
struct MethodFiles<'a>(&'a mut BTreeMap<String, Value>);

impl MethodFiles<'_> {
    fn add<T: JsonSchema>(&mut self, file: String) {
        let schema = root::<T>(&file);
        self.0.insert(file, schema);
    }
}

impl MethodVisitor for MethodFiles<'_> {
    fn request<M: RequestMethod>(&mut self, info: &MethodInfo) {
        if info.schema_files {
            self.add::<M::Params>(format!("{}.params.json", info.stem()));
            self.add::<M::Result>(format!("{}.result.json", info.stem()));
        }
    }

    fn notification<N: NotificationMethod>(&mut self, info: &MethodInfo) {
        if info.schema_files {
            self.add::<N::Params>(format!("{}.params.json", info.stem()));
        }
    }
}

impl PlaneUnion {
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
    visit_methods(&mut MethodFiles(&mut out));
    let mut add = |file: &str, v: Value| {
        out.insert(file.to_string(), v);
    };
    add("jsonrpc.message.json", root::<Message>("jsonrpc.message.json"));
    add("record.line.json", root::<RecordLine>("record.line.json"));
    add("error.unsupportedVersion.data.json", root::<UnsupportedVersionData>("error.unsupportedVersion.data.json"));
    let env = PlaneUnion::of(methods::Plane::Environment);
    add("environment-plane.json", env.into_schema("environment-plane.json", "stepwire environment plane message"));
    let agent = PlaneUnion::of(methods::Plane::Agent);
    add("agent-plane.json", agent.into_schema("agent-plane.json", "stepwire agent plane message"));
    out
}

/// Everything `stepwire schema` writes into `schemas/`: the schemas and [`PROTOCOL_FILE`].
pub fn generated_files() -> BTreeMap<String, Value> {
    let mut files = generate();
    files.insert(PROTOCOL_FILE.to_string(), protocol_summary());
    files
}

/// The machine-readable summary of the contract, for peers that do not read Rust: the protocol
/// version, every method and every error code. The Python SDK ships a copy and reads it.
pub const PROTOCOL_FILE: &str = "protocol.json";

pub fn protocol_summary() -> Value {
    let methods: Vec<Value> = METHODS
        .iter()
        .map(|m| {
            let mut v = serde_json::to_value(m).expect("plain struct serialises");
            let stem = m.stem();
            if m.schema_files {
                v["paramsSchema"] = json!(format!("{stem}.params.json"));
                if m.kind == methods::MethodKind::Request {
                    v["resultSchema"] = json!(format!("{stem}.result.json"));
                }
            }
            v
        })
        .collect();
    json!({
        "$comment": "Generated from the Rust protocol types by `stepwire schema`; do not edit.",
        "protocolVersion": PROTOCOL_VERSION,
        "supportedVersions": SUPPORTED_PROTOCOL_VERSIONS,
        "methods": methods,
        "errorCodes": ErrorCode::KNOWN,
        "ranges": {
            "protocol": [-32768, -32000],
            "stepwire": [-31999, -31000],
        },
    })
}

pub fn render(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("JSON values serialise");
    s.push('\n');
    s
}

/// Differences between `dir` and what the types produce: missing, changed and stray files.
pub fn drift(dir: &std::path::Path) -> std::io::Result<Vec<String>> {
    let want = generated_files();
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
    let want = generated_files();
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
/// read and write each example. `None` when `stem` names no payload type.
pub fn roundtrip(stem: &str, value: Value) -> Option<Result<Value, serde_json::Error>> {
    fn via<T: serde::de::DeserializeOwned + serde::Serialize>(v: Value) -> Result<Value, serde_json::Error> {
        serde_json::to_value(serde_json::from_value::<T>(v)?)
    }
    /// Finds the method payload named by `stem` and round-trips `value` through its type.
    struct Payload<'a> {
        stem: &'a str,
        value: Option<Value>,
        out: Option<Result<Value, serde_json::Error>>,
    }
    impl Payload<'_> {
        fn try_as<T: serde::de::DeserializeOwned + serde::Serialize>(&mut self, stem: String) {
            if self.out.is_none() && self.stem == stem {
                self.out = self.value.take().map(via::<T>);
            }
        }
    }
    impl MethodVisitor for Payload<'_> {
        fn request<M: RequestMethod>(&mut self, info: &MethodInfo) {
            self.try_as::<M::Params>(format!("{}.params", info.stem()));
            self.try_as::<M::Result>(format!("{}.result", info.stem()));
        }
        fn notification<N: NotificationMethod>(&mut self, info: &MethodInfo) {
            self.try_as::<N::Params>(format!("{}.params", info.stem()));
        }
    }
    match stem {
        "jsonrpc.message" | "environment-plane" | "agent-plane" => Some(via::<Message>(value)),
        "record.line" => Some(via::<RecordLine>(value)),
        "error.unsupportedVersion.data" => Some(via::<UnsupportedVersionData>(value)),
        _ => {
            let mut payload = Payload { stem, value: Some(value), out: None };
            visit_methods(&mut payload);
            payload.out
        }
    }
}
