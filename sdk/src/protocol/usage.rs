//! Token accounting, reported with every agent-plane answer.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Tokens one policy call consumed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleUsage {
    /// Tokens of the prompt, cached ones included.
    pub prompt_tokens: u64,
    /// Prompt tokens served from the prefix cache rather than computed.
    pub cached_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
}

impl RoleUsage {
    pub fn add(&mut self, other: RoleUsage) {
        self.prompt_tokens += other.prompt_tokens;
        self.cached_tokens += other.cached_tokens;
        self.completion_tokens += other.completion_tokens;
    }
}

/// Token usage per policy level. A level that did not run reports zeros.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    pub high: RoleUsage,
    pub low: RoleUsage,
    pub progress: RoleUsage,
}

impl Usage {
    pub fn add(&mut self, other: Usage) {
        self.high.add(other.high);
        self.low.add(other.low);
        self.progress.add(other.progress);
    }

    pub fn total(&self) -> RoleUsage {
        let mut t = self.high;
        t.add(self.low);
        t.add(self.progress);
        t
    }
}
