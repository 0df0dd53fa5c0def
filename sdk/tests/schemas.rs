//! The checked-in schemas are what the types produce, every example is valid against its schema,
//! and the Rust types read every example and write it back in a stable form (snapshotted).

use std::path::{Path, PathBuf};

use serde_json::Value;
use stepwire_sdk::schema;

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (schema stem, example name, example) for every file under `schemas/examples/`.
fn examples() -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(schemas_dir().join("examples")).expect("schemas/examples exists") {
        let dir = dir.unwrap().path();
        let stem = dir.file_name().unwrap().to_string_lossy().to_string();
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            let name = file.file_stem().unwrap().to_string_lossy().to_string();
            out.push((stem.clone(), name, load(&file)));
        }
    }
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

#[test]
fn checked_in_schemas_match_the_types() {
    let problems = schema::drift(&schemas_dir()).unwrap();
    assert!(
        problems.is_empty(),
        "schemas/ is out of date with the protocol types:\n  {}\nregenerate with: cargo run -p stepwire-runtime -- schema",
        problems.join("\n  ")
    );
}

#[test]
fn every_schema_has_an_example() {
    let have: std::collections::BTreeSet<String> = examples().into_iter().map(|e| e.0).collect();
    for file in schema::generate().keys() {
        let stem = file.trim_end_matches(".json");
        assert!(have.contains(stem), "no example under schemas/examples/{stem}/");
    }
}

#[test]
fn every_example_is_valid_against_its_schema() {
    for (stem, name, example) in examples() {
        let schema = load(&schemas_dir().join(format!("{stem}.json")));
        let validator = jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("{stem}.json is not a valid 2020-12 schema: {e}"));
        let errors: Vec<String> = validator.iter_errors(&example).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "examples/{stem}/{name}.json: {errors:?}");
    }
}

#[test]
fn schemas_reject_what_the_types_reject() {
    let cases = [
        ("env.step.params", serde_json::json!({ "action": 3 })),
        ("env.reset.params", serde_json::json!({ "variation": 1 })),
        ("initialize.params", serde_json::json!({ "protocolVersion": "1", "clientInfo": { "name": "x" } })),
        ("agent.act.result", serde_json::json!({ "action": "look", "usage": {} })),
        ("jsonrpc.message", serde_json::json!({ "jsonrpc": "1.0", "id": 1, "method": "x" })),
        ("environment-plane", serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": "env/step", "params": {} })),
    ];
    for (stem, bad) in cases {
        let schema = load(&schemas_dir().join(format!("{stem}.json")));
        let validator = jsonschema::draft202012::new(&schema).unwrap();
        assert!(!validator.is_valid(&bad), "{stem} accepted {bad}");
        // The plane unions type params per method; in Rust that happens at dispatch, not in `Message`.
        if stem.ends_with("-plane") {
            continue;
        }
        if let Some(parsed) = schema::roundtrip(stem, bad.clone()) {
            assert!(parsed.is_err(), "the Rust type behind {stem} accepted {bad}");
        }
    }
}

#[test]
fn types_read_and_write_every_example() {
    for (stem, name, example) in examples() {
        let written = schema::roundtrip(&stem, example)
            .unwrap_or_else(|| panic!("no Rust type for schema {stem}"))
            .unwrap_or_else(|e| panic!("examples/{stem}/{name}.json does not parse: {e}"));
        insta::assert_json_snapshot!(format!("{stem}__{name}"), written);
    }
}
