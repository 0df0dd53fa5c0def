//! Prompt templates: literal text with `{field}` placeholders (`{{` and `}}` escape braces).
//!
//! The text before the first placeholder is the template's fixed prefix, which the prefix cache
//! computes once.

use std::collections::BTreeMap;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Field(String),
}

/// A parsed prompt template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

impl Template {
    /// Parses `text`; the error says what is wrong (unclosed brace, empty name, ...).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut segments = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) if c.is_alphanumeric() || c == '_' => name.push(c),
                            Some(c) => {
                                return Err(format!(
                                    "invalid character {c:?} in placeholder {{{name}...}} (use \
                                     {{{{ for a literal brace)"
                                ))
                            }
                            None => return Err(format!("unclosed placeholder {{{name}")),
                        }
                    }
                    if name.is_empty() {
                        return Err("empty placeholder {}".into());
                    }
                    if !lit.is_empty() {
                        segments.push(Segment::Text(std::mem::take(&mut lit)));
                    }
                    segments.push(Segment::Field(name));
                }
                '}' => return Err("single '}' (write }} for a literal brace)".into()),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            segments.push(Segment::Text(lit));
        }
        Ok(Template { segments })
    }

    /// The placeholder names, in order of appearance.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Field(n) => Some(n.as_str()),
            Segment::Text(_) => None,
        })
    }

    /// The literal text before the first placeholder (the cacheable prefix).
    pub fn prefix(&self) -> &str {
        match self.segments.first() {
            Some(Segment::Text(t)) if self.segments.len() > 1 => t,
            _ => "",
        }
    }

    /// Fills the placeholders; a missing field renders as `missing` (the caller validated names).
    pub fn render(&self, fields: &BTreeMap<&str, String>, missing: &str) -> String {
        let mut out = String::new();
        for s in &self.segments {
            match s {
                Segment::Text(t) => out.push_str(t),
                Segment::Field(n) => out.push_str(fields.get(n.as_str()).map_or(missing, |v| v)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders() {
        let t = Template::parse("Intro {{x}}\nTask:\n{task}\nObs:\n{observation}\nEnd").unwrap();
        assert_eq!(t.prefix(), "Intro {x}\nTask:\n");
        assert_eq!(t.fields().collect::<Vec<_>>(), ["task", "observation"]);
        let mut f = BTreeMap::new();
        f.insert("task", "cook".to_string());
        assert_eq!(t.render(&f, "none"), "Intro {x}\nTask:\ncook\nObs:\nnone\nEnd");
    }

    #[test]
    fn rejects_bad_braces() {
        assert!(Template::parse("a {b").is_err());
        assert!(Template::parse("a {} b").is_err());
        assert!(Template::parse("a } b").is_err());
        assert!(Template::parse("a {b c} d").is_err());
    }
}
