//! Filling role templates from the protocol params.

use std::collections::BTreeMap;

use stepwire_sdk::protocol::{ActParams, PlanParams, ProgressUpdateParams};

use crate::manifest::Manifest;

/// The field values of one prompt, by placeholder name. Values are trimmed (a field starting
/// with whitespace could merge with the template's newline and defeat the prefix cache) and an
/// empty value renders as the manifest's `empty_field`.
pub type Fields<'a> = BTreeMap<&'a str, String>;

fn value(m: &Manifest, s: &str) -> String {
    let s = s.trim();
    if s.is_empty() {
        m.empty_field.clone()
    } else {
        s.to_string()
    }
}

pub fn plan_fields<'a>(m: &Manifest, p: &PlanParams) -> Fields<'a> {
    let completed: Vec<&str> = p.completed_subtasks.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
    let mut f = Fields::new();
    f.insert("task", value(m, &p.task));
    f.insert("completed_subtasks", value(m, &completed.join(&m.list_separator)));
    f.insert("last_progress", value(m, &p.last_progress));
    f.insert("observation", value(m, &p.observation.render()));
    f
}

pub fn act_fields<'a>(m: &Manifest, p: &ActParams) -> Fields<'a> {
    let mut f = Fields::new();
    f.insert("subtask", value(m, &p.subtask));
    f.insert("progress", value(m, &p.progress));
    f.insert("observation", value(m, &p.observation.render()));
    f
}

pub fn progress_fields<'a>(m: &Manifest, p: &ProgressUpdateParams) -> Fields<'a> {
    let mut f = Fields::new();
    f.insert("subtask", value(m, &p.subtask));
    f.insert("progress", value(m, &p.previous_progress));
    f.insert("previous_progress", value(m, &p.previous_progress));
    f.insert("action", value(m, &p.action));
    f.insert("observation", value(m, &p.observation.render()));
    f
}

/// Splits free low-level output `<action><separator><flag>`. Without the separator the whole
/// (first) line is the action and the subtask is not done.
pub fn parse_low(text: &str, separator: &str, done: &str) -> (String, bool) {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let sep = separator.trim();
    match line.find(sep) {
        Some(i) => {
            let action = line[..i].trim().to_string();
            let flag = line[i + sep.len()..].trim();
            (action, flag.starts_with(done))
        }
        None => (line.trim().to_string(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_low;

    #[test]
    fn parses_low_output() {
        assert_eq!(parse_low(" open fridge 1 ||| done", " ||| ", "done"), ("open fridge 1".into(), true));
        assert_eq!(parse_low("look ||| continue", " ||| ", "done"), ("look".into(), false));
        assert_eq!(parse_low(" take apple 1", " ||| ", "done"), ("take apple 1".into(), false));
        assert_eq!(parse_low("", " ||| ", "done"), ("".into(), false));
    }
}
