//! One request's decoding state: picks each next token from the logits, applies the
//! constraint, and decides when generation ends (EOS, stop string, token limit, action chosen).

use std::sync::Arc;

use crate::sampling::Sampler;
use crate::tokenize::{TextStream, TextTokenizer};
use crate::trie::ActionTrie;

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The model produced the end-of-sequence token.
    Eos,
    /// A stop string appeared (the text is cut before it).
    Stop,
    /// The token limit was reached.
    Length,
    /// Constrained decoding completed an admissible output.
    Action { index: usize, done: bool },
}

/// A finished generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The decoded output, cut before the first stop string.
    pub text: String,
    /// Generated token ids (EOS excluded).
    pub token_ids: Vec<u32>,
    pub prompt_tokens: usize,
    /// Prompt tokens served from the prefix cache.
    pub cached_tokens: usize,
    pub finish: Finish,
}

/// What the decoding loop needs to know per request.
pub struct SequenceParams {
    pub max_new_tokens: usize,
    pub stop: Vec<String>,
    pub sampler: Sampler,
    pub constraint: Option<Arc<ActionTrie>>,
}

/// A sequence being decoded.
pub struct Sequence {
    params: SequenceParams,
    out: Vec<u32>,
    stream: TextStream,
    node: usize,
    finish: Option<Finish>,
}

impl Sequence {
    pub fn new(params: SequenceParams) -> Self {
        Sequence { params, out: Vec::new(), stream: TextStream::default(), node: 0, finish: None }
    }

    /// Chooses the next token from this sequence's logits. Returns the tokens to feed next, or
    /// `None` when generation has ended.
    ///
    /// Under a constraint, the chosen token may be followed by a run of forced tokens (trie
    /// nodes with one child, such as the rest of an action once its first tokens single it
    /// out). Their logits would not change the choice, so they are returned together and the
    /// engine feeds them in one pass instead of one pass each ("jump-forward" decoding).
    pub fn advance(&mut self, logits: &[f32], tok: &TextTokenizer) -> Option<Vec<u32>> {
        if self.finish.is_some() {
            return None;
        }
        if let Some(trie) = self.params.constraint.clone() {
            let mut t = self.params.sampler.select(logits, Some(trie.allowed(self.node)));
            let mut feed = vec![t];
            loop {
                // `select` only returns allowed tokens, and a forced token is the only allowed
                // one, so the step exists.
                self.node = trie.step(self.node, t).unwrap_or(self.node);
                if t != tok.eos {
                    self.out.push(t);
                }
                if let Some((index, done)) = trie.end(self.node) {
                    self.finish = Some(Finish::Action { index, done });
                    return None;
                }
                match trie.allowed(self.node) {
                    [only] => {
                        t = *only;
                        feed.push(t);
                    }
                    _ => return Some(feed),
                }
            }
        }
        let t = self.params.sampler.select(logits, None);
        if t == tok.eos {
            self.finish = Some(Finish::Eos);
            return None;
        }
        self.out.push(t);
        if !self.params.stop.is_empty() {
            self.stream.push(tok, &self.out);
            let text = self.stream.text();
            if self.params.stop.iter().any(|s| text.contains(s.as_str())) {
                self.finish = Some(Finish::Stop);
                return None;
            }
        }
        if self.out.len() >= self.params.max_new_tokens {
            self.finish = Some(Finish::Length);
            return None;
        }
        Some(vec![t])
    }

    pub fn is_finished(&self) -> bool {
        self.finish.is_some()
    }

    /// The result, once finished.
    pub fn into_generation(self, tok: &TextTokenizer, prompt_tokens: usize, cached_tokens: usize) -> Generation {
        let mut text = tok.decode(&self.out);
        if self.finish == Some(Finish::Stop) {
            if let Some(cut) = self.params.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
                text.truncate(cut);
            }
        }
        Generation {
            text,
            token_ids: self.out,
            prompt_tokens,
            cached_tokens,
            finish: self.finish.unwrap_or(Finish::Length),
        }
    }
}
