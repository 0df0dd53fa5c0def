//! The contract's human copy follows its one declaration: `docs/protocol.md` lists exactly the
//! methods of [`METHODS`] and the codes of [`ErrorCode::KNOWN`].

use std::collections::BTreeSet;

use stepwire_sdk::protocol::methods::{MethodKind, Plane, METHODS};
use stepwire_sdk::protocol::ErrorCode;

fn protocol_md() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md")).expect("docs/protocol.md")
}

/// The first cell of every table row under the heading `## {section}`, backticks stripped.
fn first_cells(doc: &str, section: &str) -> BTreeSet<String> {
    let start = doc.find(&format!("## {section}\n")).unwrap_or_else(|| panic!("no section `{section}`"));
    let body = &doc[start + section.len() + 4..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    body.lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("| ---"))
        .filter_map(|l| l.split('|').nth(1).map(|c| c.trim().trim_matches('`').to_string()))
        .filter(|c| c != "method" && c != "code")
        .collect()
}

fn requests_of(plane: Plane) -> BTreeSet<String> {
    METHODS.iter().filter(|m| m.plane == plane && m.kind == MethodKind::Request).map(|m| m.name.to_string()).collect()
}

#[test]
fn the_docs_list_every_method_of_each_plane() {
    let doc = protocol_md();
    assert_eq!(first_cells(&doc, "Environment plane (stepwire calls a bridge)"), requests_of(Plane::Environment));
    assert_eq!(first_cells(&doc, "Agent plane (a host calls stepwire)"), requests_of(Plane::Agent));
}

#[test]
fn the_docs_list_every_error_code_with_its_name() {
    let doc = protocol_md();
    let start = doc.find("## Error codes\n").expect("an error-code section");
    let rows: BTreeSet<(i64, String)> = doc[start..]
        .lines()
        .filter(|l| l.starts_with("| -3"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].parse().expect("a code"), cells[2].to_string())
        })
        .collect();
    let known: BTreeSet<(i64, String)> = ErrorCode::KNOWN.iter().map(|k| (k.code.code(), k.name.to_string())).collect();
    assert_eq!(rows, known);
}

#[test]
fn unknown_codes_are_kept_and_named_by_range() {
    let code = ErrorCode::from_code(-31500);
    assert_eq!((code.code(), code.name(), code.is_domain_fault()), (-31500, "other", true));
    assert_eq!(ErrorCode::from_code(-31001), ErrorCode::INVALID_ACTION);
    assert_eq!(serde_json::to_value(ErrorCode::LIMIT_EXCEEDED).unwrap(), serde_json::json!(-31012));
}
