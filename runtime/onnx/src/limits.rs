//! Bounds on one generation request, so that no single request can take the host's memory or
//! CPU: attention memory grows with the square of the prompt, and a constrained decode must
//! produce the whole of a chosen action.

use std::path::Path;

use crate::error::{OnnxError, Result};

/// What one generation may cost. Over a limit, a request gets [`OnnxError::LimitExceeded`]
/// (-31012 on the wire) before any model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Prompt tokens of one role's request. `None`: the model's context window less the role's
    /// `max_new_tokens`.
    pub max_prompt_tokens: Option<usize>,
    /// Tokens one request may generate: the cap on `maxTokens` and on the longest admissible
    /// output of a constrained decode.
    pub max_new_tokens: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_prompt_tokens: None, max_new_tokens: DEFAULT_MAX_NEW_TOKENS }
    }
}

pub const DEFAULT_MAX_NEW_TOKENS: usize = 256;

/// Used when the export has no `config.json` naming its window.
pub const DEFAULT_CONTEXT_TOKENS: usize = 4096;

/// The model's context window: `max_position_embeddings` of the `config.json` beside the ONNX
/// file (what Optimum exports carry), else [`DEFAULT_CONTEXT_TOKENS`].
pub fn context_window(onnx: &Path) -> usize {
    let config = onnx.with_file_name("config.json");
    std::fs::read(&config)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("max_position_embeddings")?.as_u64())
        .map_or(DEFAULT_CONTEXT_TOKENS, |n| n as usize)
}

impl Limits {
    /// The prompt limit of a role of a model with `context` positions that generates up to
    /// `max_new` tokens: the user's limit when it is smaller than what fits.
    pub fn prompt_limit(&self, context: usize, max_new: usize) -> usize {
        let fits = context.saturating_sub(max_new).max(1);
        self.max_prompt_tokens.map_or(fits, |n| n.min(fits))
    }

    /// Checks a request's generation budget (`maxTokens`, or the role's default).
    pub fn check_new_tokens(&self, requested: usize) -> Result<()> {
        if requested > self.max_new_tokens {
            return Err(OnnxError::LimitExceeded(format!(
                "maxTokens {requested} is over this server's generation limit of {} tokens \
                 (raise it with --max-new-tokens)",
                self.max_new_tokens
            )));
        }
        Ok(())
    }

    /// Checks the longest admissible output of a constrained decode.
    pub fn check_action(&self, tokens: usize, action: &str) -> Result<()> {
        if tokens > self.max_new_tokens {
            let shown: String = action.chars().take(60).collect();
            return Err(OnnxError::LimitExceeded(format!(
                "admissible action \"{shown}…\" ({} bytes) takes {tokens} tokens to generate, over this \
                 server's generation limit of {} (raise it with --max-new-tokens)",
                action.len(),
                self.max_new_tokens
            )));
        }
        Ok(())
    }

    /// Checks a prompt's length against a role's limit.
    pub fn check_prompt(tokens: usize, limit: usize, role: &str) -> Result<()> {
        if tokens > limit {
            return Err(OnnxError::LimitExceeded(format!(
                "the {role} prompt is {tokens} tokens, over the limit of {limit} (the model's context \
                 window less its generation, or --max-prompt-tokens): shorten the observation or the \
                 fields sent"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_limit_is_what_fits_or_the_users_smaller_one() {
        let l = Limits::default();
        assert_eq!(l.prompt_limit(1024, 24), 1000);
        let l = Limits { max_prompt_tokens: Some(300), ..l };
        assert_eq!(l.prompt_limit(1024, 24), 300);
        let l = Limits { max_prompt_tokens: Some(5000), ..l };
        assert_eq!(l.prompt_limit(1024, 24), 1000);
    }

    #[test]
    fn over_a_limit_is_a_limit_error() {
        let l = Limits { max_prompt_tokens: None, max_new_tokens: 8 };
        assert!(l.check_new_tokens(8).is_ok());
        assert!(matches!(l.check_new_tokens(9), Err(OnnxError::LimitExceeded(_))));
        assert!(matches!(l.check_action(9, "open the door"), Err(OnnxError::LimitExceeded(_))));
        assert!(matches!(Limits::check_prompt(11, 10, "low"), Err(OnnxError::LimitExceeded(_))));
    }
}
