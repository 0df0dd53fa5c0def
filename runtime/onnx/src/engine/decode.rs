//! The decode thread: the running batch. Prefilled rows join it between steps; each step runs
//! every row in one model call; finished or cancelled rows leave.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tracing::error;

use super::prefill::Admission;
use super::queue::{Queue, Work};
use super::{BatchOptions, EngineStats, Reply};
use crate::decoder::Decoder;
use crate::error::{OnnxError, Result};
use crate::kv::{Kv, Padding, RowRef};
use crate::sequence::Sequence;

/// A running sequence.
pub(super) struct Row {
    pub seq: Sequence,
    pub cancel: CancellationToken,
    pub reply: Reply,
    pub prompt_tokens: usize,
    pub cached_tokens: usize,
    /// Valid (non-padding) cache columns.
    pub valid: usize,
    /// Tokens to feed next: the chosen one, then any forced ones (see `Sequence::advance`).
    pub next: VecDeque<u32>,
}

/// A prefilled row and its own cache, ready to join the batch.
pub(super) type Admitted = (Row, Kv);

pub(super) struct Decoding {
    pub decoder: Decoder,
    pub admission: Arc<Admission>,
    pub queue: Arc<Queue>,
    pub batch: BatchOptions,
    pub stats: Arc<EngineStats>,
    /// A prefill thread admits jobs while this one decodes; without it, this thread admits
    /// queued jobs between steps.
    pub prefill_thread: bool,
}

impl Decoding {
    /// Decodes until the queue is closed and every request is answered.
    pub fn run(mut self) {
        let max = self.batch.max_batch;
        let mut rows: Vec<Row> = Vec::new();
        let mut kv: Option<Kv> = None;
        loop {
            let mut joining = Vec::new();
            if rows.is_empty() {
                match self.queue.idle(max) {
                    Work::Done => return,
                    Work::Rows(r) => joining = r,
                    Work::Job(job) => {
                        if !self.batch.max_wait.is_zero() {
                            self.queue.settle(Instant::now() + self.batch.max_wait, max);
                        }
                        joining.extend(self.admission.admit(&mut self.decoder, job));
                    }
                }
            }
            let (ready, jobs) = self.queue.take(max - rows.len() - joining.len(), !self.prefill_thread);
            joining.extend(ready);
            for job in jobs {
                joining.extend(self.admission.admit(&mut self.decoder, job));
            }
            if let Err(e) = self.regroup(&mut rows, &mut kv, joining) {
                fail_all(&mut rows, &mut kv, &e);
                continue;
            }
            if !rows.is_empty() {
                if let Err(e) = self.step(&mut rows, &mut kv) {
                    fail_all(&mut rows, &mut kv, &e);
                }
            }
        }
    }

    /// Adds joining rows to the batch, laying out one cache for all rows (padded as the layout
    /// wants).
    fn regroup(&self, rows: &mut Vec<Row>, kv: &mut Option<Kv>, joining: Vec<(Row, Kv)>) -> Result<()> {
        if joining.is_empty() {
            return Ok(());
        }
        if rows.is_empty() && joining.len() == 1 {
            let (row, k) = joining.into_iter().next().expect("one joining row");
            rows.push(row);
            *kv = Some(k);
            return Ok(());
        }
        let len = rows.iter().chain(joining.iter().map(|(r, _)| r)).map(|r| r.valid).max().unwrap_or(0);
        let mut refs: Vec<RowRef<'_>> = Vec::new();
        if let Some(k) = kv.as_ref() {
            refs.extend(rows.iter().enumerate().map(|(i, r)| (k, i, r.valid)));
        }
        refs.extend(joining.iter().map(|(r, k)| (k, 0, r.valid)));
        let merged = Kv::gather(&self.decoder.spec, self.decoder.spec.layout.padding(), &refs, len)?;
        rows.extend(joining.into_iter().map(|(r, _)| r));
        *kv = Some(merged);
        Ok(())
    }

    /// Drops cancelled rows, runs one decode step for the batch, answers finished rows.
    ///
    /// A lone row feeds all its pending tokens in one pass; in a batch every row feeds one, so
    /// the rows stay aligned, and a row whose next tokens are forced skips picking from logits.
    fn step(&mut self, rows: &mut Vec<Row>, kv: &mut Option<Kv>) -> Result<()> {
        self.retire(rows, kv, |r| r.cancel.is_cancelled())?;
        let Some(past) = kv.take() else { return Ok(()) };
        let p = past.len;
        let padding = past.padding;
        let feed = if rows.len() == 1 { rows[0].next.len().max(1) } else { 1 };
        let mut ids = Vec::with_capacity(rows.len() * feed);
        let mut mask = Vec::with_capacity(rows.len() * (p + feed));
        let mut pos = Vec::with_capacity(rows.len() * feed);
        for r in rows.iter() {
            ids.extend(r.next.iter().take(feed).map(|&t| t as i64));
            let (ones, zeros) = (std::iter::repeat_n(1i64, r.valid + feed), std::iter::repeat_n(0i64, p - r.valid));
            match padding {
                Padding::Left => mask.extend(zeros.chain(ones)),
                Padding::Right => mask.extend(ones.chain(zeros)),
            }
            pos.extend((r.valid..r.valid + feed).map(|v| v as i64));
        }
        if ids.len() != rows.len() * feed {
            return Err(OnnxError::Inference("a running sequence has no token to feed".into()));
        }
        let t0 = Instant::now();
        let fwd = self.decoder.forward(&ids, &mask, &pos, past)?;
        self.stats.decode_ns.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        *kv = Some(fwd.kv);
        self.stats.decode_steps.fetch_add(1, Ordering::Relaxed);
        self.stats.decode_rows.fetch_add(rows.len() as u64, Ordering::Relaxed);
        self.stats.decode_tokens.fetch_add(ids.len() as u64, Ordering::Relaxed);
        self.stats.max_rows.fetch_max(rows.len() as u64, Ordering::Relaxed);
        for (i, r) in rows.iter_mut().enumerate() {
            r.valid += feed;
            r.next.drain(..feed);
            if !r.next.is_empty() {
                continue; // forced tokens still to feed: these logits decide nothing
            }
            let logits = &fwd.last_logits[i * fwd.vocab..(i + 1) * fwd.vocab];
            if let Some(next) = r.seq.advance(logits, &self.admission.tok) {
                r.next = next.into();
            }
        }
        self.retire(rows, kv, |r| r.seq.is_finished())
    }

    /// Removes rows matching `pred` (answering them) and compacts the cache.
    fn retire(&self, rows: &mut Vec<Row>, kv: &mut Option<Kv>, pred: impl Fn(&Row) -> bool) -> Result<()> {
        if !rows.iter().any(&pred) {
            return Ok(());
        }
        let old = std::mem::take(rows);
        let mut keep_idx = Vec::new();
        for (i, r) in old.into_iter().enumerate() {
            if pred(&r) {
                let result = if r.seq.is_finished() {
                    Ok(r.seq.into_generation(&self.admission.tok, r.prompt_tokens, r.cached_tokens))
                } else {
                    Err(OnnxError::Cancelled)
                };
                (r.reply)(result);
            } else {
                keep_idx.push(i);
                rows.push(r);
            }
        }
        if rows.is_empty() {
            *kv = None;
            return Ok(());
        }
        let Some(k) = kv.as_ref() else { return Ok(()) };
        let len = rows.iter().map(|r| r.valid).max().unwrap_or(0);
        let refs: Vec<RowRef<'_>> = keep_idx.iter().zip(rows.iter()).map(|(&i, r)| (k, i, r.valid)).collect();
        let compact = Kv::gather(&self.decoder.spec, self.decoder.spec.layout.padding(), &refs, len)?;
        *kv = Some(compact);
        Ok(())
    }
}

fn fail_all(rows: &mut Vec<Row>, kv: &mut Option<Kv>, e: &OnnxError) {
    error!("generation failed: {e}");
    for r in rows.drain(..) {
        (r.reply)(Err(OnnxError::Inference(e.to_string())));
    }
    *kv = None;
}
