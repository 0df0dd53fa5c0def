//! The HF `tokenizers` tokenizer with the manifest's special tokens, and incremental
//! detokenisation that holds back incomplete UTF-8.

use crate::error::{OnnxError, Result};
use crate::manifest::ModelFiles;

/// A tokenizer plus the special token ids the manifest names.
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    pub bos: Option<u32>,
    pub eos: u32,
    pub pad: u32,
}

impl TextTokenizer {
    /// Loads `tokenizer.json` and resolves the manifest's special tokens.
    pub fn load(files: &ModelFiles) -> Result<Self> {
        let path = files.tokenizer.as_path();
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| OnnxError::tokenizer(path, format!("cannot load the tokenizer: {e}")))?;
        let id = |field: &str, tok: &str| -> Result<u32> {
            inner.token_to_id(tok).ok_or_else(|| {
                OnnxError::tokenizer(path, format!("the manifest's {field} {tok:?} is not a token of this tokenizer"))
            })
        };
        let eos = id("eos_token", &files.eos_token)?;
        let bos = files.bos_token.as_deref().map(|t| id("bos_token", t)).transpose()?;
        let pad = match files.pad_token.as_deref() {
            Some(t) => id("pad_token", t)?,
            None => eos,
        };
        Ok(TextTokenizer { inner, bos, eos, pad })
    }

    /// Token ids of a prompt: special tokens as the tokenizer's post-processor adds them, with the
    /// manifest's BOS prepended when the post-processor did not.
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>> {
        // `encode_fast` skips the offsets, which nothing here reads.
        let enc = self
            .inner
            .encode_fast(text, true)
            .map_err(|e| OnnxError::InvalidInput(format!("cannot tokenize the prompt: {e}")))?;
        let mut ids = enc.get_ids().to_vec();
        if let Some(bos) = self.bos {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }

    /// Token ids of a continuation (no special tokens).
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| OnnxError::InvalidInput(format!("cannot tokenize {text:?}: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens skipped; incomplete UTF-8 becomes U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, true).unwrap_or_default()
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

/// Incremental detokeniser: emits text as tokens arrive, holding back a tail that ends in an
/// incomplete UTF-8 sequence until the bytes that complete it arrive.
///
/// It decodes a short window (`context..`) and compares it with the window without the pending
/// tokens, so decoders that treat the first token specially (leading-space rules) stay correct.
#[derive(Debug, Default, Clone)]
pub struct TextStream {
    context: usize,
    pending: usize,
    text: String,
}

impl TextStream {
    /// Takes the whole output so far; returns the newly completed text (maybe empty).
    pub fn push(&mut self, tok: &TextTokenizer, ids: &[u32]) -> &str {
        let before = tok.decode(&ids[self.context..self.pending]);
        let now = tok.decode(&ids[self.context..]);
        if now.ends_with('\u{FFFD}') || !now.starts_with(&before) {
            return "";
        }
        let start = self.text.len();
        self.text.push_str(&now[before.len()..]);
        self.context = self.pending;
        self.pending = ids.len();
        &self.text[start..]
    }

    /// All text emitted so far.
    pub fn text(&self) -> &str {
        &self.text
    }
}
