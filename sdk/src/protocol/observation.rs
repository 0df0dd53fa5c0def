//! Structured observations: the main text plus named parts a template can lay out.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the agent sees after a reset or a step.
///
/// `text` is what the environment printed for this step. `parts` holds further named views the
/// environment offers at no extra cost (ScienceWorld's `look` and `inventory`, say); their names
/// are listed in the bridge's `observationParts` capability.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Observation {
    pub text: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parts: BTreeMap<String, String>,
}

impl Observation {
    pub fn text(text: impl Into<String>) -> Self {
        Observation { text: text.into(), parts: BTreeMap::new() }
    }

    pub fn with_part(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.parts.insert(name.into(), value.into());
        self
    }

    /// The text followed by each part under its name: how a prompt template shows `{observation}`.
    pub fn render(&self) -> String {
        let mut out = self.text.trim().to_string();
        for (name, value) in &self.parts {
            out.push_str(&format!("\n[{name}] {}", value.trim()));
        }
        out
    }
}
