//! Admitting a request: its prompt computed on top of its role's cached prefix, and its first
//! token picked. The decode thread does this itself when idle; the prefill thread (with its own
//! session) does it while the decode thread runs a batch.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::decode::{Admitted, Row};
use super::queue::Queue;
use super::{EngineStats, Job};
use crate::decoder::Decoder;
use crate::error::OnnxError;
use crate::prefix_cache::PrefixCache;
use crate::tokenize::TextTokenizer;

/// What admitting needs besides a session; shared by both threads.
pub(super) struct Admission {
    pub tok: Arc<TextTokenizer>,
    pub cache: PrefixCache,
    pub stats: Arc<EngineStats>,
}

/// The prefill thread: admits jobs while the decode thread is busy, until the queue closes.
pub(super) fn run(mut decoder: Decoder, admission: Arc<Admission>, queue: Arc<Queue>, room: usize) {
    while let Some(job) = queue.job_for_prefill(room) {
        let row = admission.admit(&mut decoder, job);
        queue.hand_over(row);
    }
}

impl Admission {
    /// Prefills a new request alone and picks its first token. Returns the row to join the
    /// batch, or `None` when the request is already answered.
    pub fn admit(&self, decoder: &mut Decoder, job: Job) -> Option<Admitted> {
        let Job { prompt, prefix_slot, mut seq, cancel, reply } = job;
        if cancel.is_cancelled() {
            reply(Err(OnnxError::Cancelled));
            return None;
        }
        if prompt.is_empty() {
            reply(Err(OnnxError::InvalidInput("the prompt has no tokens".into())));
            return None;
        }
        let ids: Vec<i64> = prompt.iter().map(|&t| t as i64).collect();
        let mask = vec![1i64; ids.len()];
        let t0 = Instant::now();
        let result = match self.cache.lookup(prefix_slot, &prompt) {
            Some(entry) => {
                let p = entry.ids.len();
                let pos: Vec<i64> = (p as i64..ids.len() as i64).collect();
                decoder
                    .continue_from(&entry.kv)
                    .and_then(|past| decoder.forward(&ids[p..], &mask, &pos, past))
                    .map(|f| (f, p))
            }
            None => {
                let pos: Vec<i64> = (0..ids.len() as i64).collect();
                decoder.empty_kv(1).and_then(|past| decoder.forward(&ids, &mask, &pos, past)).map(|f| (f, 0))
            }
        };
        let (fwd, cached) = match result {
            Ok(r) => {
                self.stats.prefills.fetch_add(1, Ordering::Relaxed);
                self.stats.prefill_ns.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
                self.stats.prefill_tokens.fetch_add((prompt.len() - r.1) as u64, Ordering::Relaxed);
                r
            }
            Err(e) => {
                reply(Err(e));
                return None;
            }
        };
        let row = |seq, next: Vec<u32>| Row {
            seq,
            cancel,
            reply,
            prompt_tokens: prompt.len(),
            cached_tokens: cached,
            valid: prompt.len(),
            next: next.into(),
        };
        match seq.advance(&fwd.last_logits, &self.tok) {
            Some(next) => Some((row(seq, next), fwd.kv)),
            None => {
                let r = row(seq, Vec::new());
                let g = r.seq.into_generation(&self.tok, r.prompt_tokens, r.cached_tokens);
                (r.reply)(Ok(g));
                None
            }
        }
    }
}
