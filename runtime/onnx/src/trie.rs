//! Constrained decoding for the low level: a token trie over every admissible output
//! `<lead><action><separator><done|continue>` (and `<lead><action></s>`), so the decoder can only
//! produce one admissible action followed by a valid done flag.
//!
//! Whole outputs are tokenised at once, so the tokens are those the model would see. At a node
//! the allowed tokens are its children; where only one exists the choice is forced, and where
//! `done` and `continue` diverge the logits decide. An action that is a prefix of another ends at
//! an inner node: there the separator and `</s>` are allowed next to the longer actions' tokens.
//! `</s>` right after an action means `continue` (the same fallback as free text without a flag).

use std::collections::HashSet;

use crate::error::{OnnxError, Result};
use crate::manifest::LowFormat;
use crate::tokenize::TextTokenizer;

#[derive(Debug, Default, Clone)]
struct Node {
    /// `(token, child node)`, sorted by token.
    children: Vec<(u32, usize)>,
    tokens: Vec<u32>,
    /// Reaching this node completes an output: `(action index, done)`.
    end: Option<(usize, bool)>,
}

/// The trie over the admissible outputs of one request.
#[derive(Debug, Clone)]
pub struct ActionTrie {
    nodes: Vec<Node>,
    /// The distinct, non-empty actions; `end` indexes into this list.
    pub actions: Vec<String>,
    /// Tokens of the longest output, what a generation may have to produce.
    pub longest: usize,
    /// The action of the longest output.
    pub longest_action: usize,
}

impl ActionTrie {
    /// Builds the trie. `lead` is what separates the prompt from the action (`" "` when the
    /// prompt does not end in whitespace). Duplicate and blank actions are dropped.
    pub fn build(tok: &TextTokenizer, actions: &[String], fmt: &LowFormat, lead: &str) -> Result<Self> {
        let mut seen = HashSet::new();
        let actions: Vec<String> =
            actions.iter().filter(|a| !a.trim().is_empty() && seen.insert(a.as_str())).cloned().collect();
        if actions.is_empty() {
            return Err(OnnxError::InvalidInput("admissibleActions is empty (or holds only blank strings)".into()));
        }
        let mut trie = ActionTrie { nodes: vec![Node::default()], actions: Vec::new(), longest: 0, longest_action: 0 };
        for (i, a) in actions.iter().enumerate() {
            let done = tok.encode_plain(&format!("{lead}{a}{}{}", fmt.separator, fmt.done))?;
            let cont = tok.encode_plain(&format!("{lead}{a}{}{}", fmt.separator, fmt.cont))?;
            let mut eos = tok.encode_plain(&format!("{lead}{a}"))?;
            eos.push(tok.eos);
            let most = done.len().max(cont.len()).max(eos.len());
            if most > trie.longest {
                (trie.longest, trie.longest_action) = (most, i);
            }
            trie.insert(&done, (i, true));
            trie.insert(&cont, (i, false));
            trie.insert(&eos, (i, false));
        }
        for n in &mut trie.nodes {
            n.children.sort_unstable();
            n.tokens = n.children.iter().map(|c| c.0).collect();
        }
        trie.actions = actions;
        Ok(trie)
    }

    fn insert(&mut self, ids: &[u32], end: (usize, bool)) {
        let mut node = 0;
        for &t in ids {
            if self.nodes[node].end.is_some() {
                // A shorter output already ends here; it wins (see the module docs).
                return;
            }
            node = match self.nodes[node].children.iter().find(|c| c.0 == t) {
                Some(&(_, child)) => child,
                None => {
                    self.nodes.push(Node::default());
                    let child = self.nodes.len() - 1;
                    self.nodes[node].children.push((t, child));
                    child
                }
            };
        }
        if self.nodes[node].end.is_none() && self.nodes[node].children.is_empty() {
            self.nodes[node].end = Some(end);
        }
    }

    pub const ROOT: usize = 0;

    /// Tokens allowed after reaching `node` (never empty for a node without `end`).
    pub fn allowed(&self, node: usize) -> &[u32] {
        &self.nodes[node].tokens
    }

    /// The node after `token`, if allowed.
    pub fn step(&self, node: usize, token: u32) -> Option<usize> {
        let c = &self.nodes[node].children;
        c.binary_search_by_key(&token, |x| x.0).ok().map(|i| c[i].1)
    }

    /// `(action index, done)` when `node` completes an output.
    pub fn end(&self, node: usize) -> Option<(usize, bool)> {
        self.nodes[node].end
    }
}
