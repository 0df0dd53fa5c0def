//! The plain decoding loop, as a user would write it: left-padded batch, whole-prompt prefill, no
//! prefix cache, no worker, one pass per token. Tests check the engine against it, and it against
//! `expected.json`.

use crate::decoder::Decoder;
use crate::error::{OnnxError, Result};
use crate::kv::Padding;
use crate::sampling::argmax;
use crate::trie::ActionTrie;

/// Greedy decoding of `rows` together (left-padded with `pad`); returns each row's new tokens,
/// stopping a row at `eos` (not included) or after `max_new` tokens.
pub fn greedy_padded(
    decoder: &mut Decoder,
    rows: &[Vec<u32>],
    pad: u32,
    eos: u32,
    max_new: usize,
) -> Result<Vec<Vec<u32>>> {
    if decoder.spec.layout.padding() == Padding::Right && rows.len() > 1 {
        // A right-padded layout finds positions from the mask's count of ones, so a left-padded
        // batch would not mean the same thing: the plain loop runs its rows one at a time.
        return rows
            .iter()
            .map(|r| Ok(greedy_padded(decoder, std::slice::from_ref(r), pad, eos, max_new)?.remove(0)))
            .collect();
    }
    let b = rows.len();
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = vec![pad as i64; b * width];
    let mut mask = vec![0i64; b * width];
    let mut pos = vec![1i64; b * width];
    for (i, r) in rows.iter().enumerate() {
        let off = width - r.len();
        for (j, &t) in r.iter().enumerate() {
            ids[i * width + off + j] = t as i64;
            mask[i * width + off + j] = 1;
            pos[i * width + off + j] = j as i64;
        }
    }
    let mut next_pos: Vec<i64> = rows.iter().map(|r| r.len() as i64).collect();
    let mut past = decoder.empty_kv(b)?;
    let mut out = vec![Vec::new(); b];
    let mut live = vec![true; b];
    let mut total = width;
    for _ in 0..max_new {
        let fwd = decoder.forward(&ids, &mask, &pos, past)?;
        past = fwd.kv;
        let mut next = vec![pad as i64; b];
        for i in 0..b {
            if !live[i] {
                continue;
            }
            let t = argmax(&fwd.last_logits[i * fwd.vocab..(i + 1) * fwd.vocab], None);
            if t == eos {
                live[i] = false;
            } else {
                out[i].push(t);
                next[i] = t as i64;
            }
        }
        if !live.iter().any(|&l| l) {
            break;
        }
        total += 1;
        let mut grown = Vec::with_capacity(b * total);
        for i in 0..b {
            grown.extend_from_slice(&mask[i * (total - 1)..(i + 1) * (total - 1)]);
            grown.push(1);
        }
        mask = grown;
        ids = next;
        pos = next_pos.clone();
        for p in &mut next_pos {
            *p += 1;
        }
    }
    Ok(out)
}

/// Constrained greedy decoding of one prompt, one pass per token (no jump-forward): at each step
/// the allowed token with the largest logit. Returns the tokens up to the completed output (EOS
/// excluded), as the engine's `token_ids`.
pub fn greedy_constrained(decoder: &mut Decoder, prompt: &[u32], trie: &ActionTrie, eos: u32) -> Result<Vec<u32>> {
    let mut ids: Vec<i64> = prompt.iter().map(|&t| t as i64).collect();
    let mut pos: Vec<i64> = (0..ids.len() as i64).collect();
    let mut past = decoder.empty_kv(1)?;
    let mut node = ActionTrie::ROOT;
    let mut out = Vec::new();
    loop {
        let mask = vec![1i64; past.len + ids.len()];
        let fwd = decoder.forward(&ids, &mask, &pos, past)?;
        past = fwd.kv;
        let t = argmax(&fwd.last_logits, Some(trie.allowed(node)));
        node = trie.step(node, t).ok_or_else(|| OnnxError::Inference(format!("token {t} is not allowed")))?;
        if t != eos {
            out.push(t);
        }
        if trie.end(node).is_some() {
            return Ok(out);
        }
        pos = vec![past.len as i64];
        ids = vec![t as i64];
    }
}
