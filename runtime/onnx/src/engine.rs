//! The generation worker: one thread owns a decoder session and serves requests with
//! continuous batching.
//!
//! A new request is prefilled alone (on top of its role's cached prefix), then joins the running
//! batch: the caches of all running sequences are laid side by side, left-padded to a common
//! length, and each decode step runs the whole batch in one model call with per-row attention
//! masks and position ids. Finished or cancelled rows leave the batch between steps. Tokens forced
//! by a constraint need no logits: a lone row feeds a whole forced run in one pass. Requests are
//! taken from the queue whenever the batch has room, so no request waits for another to finish.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::decoder::Decoder;
use crate::error::{OnnxError, Result};
use crate::kv::{Kv, RowRef};
use crate::prefix_cache::PrefixCache;
use crate::sequence::{Generation, Sequence};
use crate::tokenize::TextTokenizer;

/// Batching settings.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Most sequences decoded together (1 disables batching).
    pub max_batch: usize,
    /// How long an idle worker waits for more requests before starting (0: start at once;
    /// later arrivals still join the running batch at the next step).
    pub max_wait: Duration,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions { max_batch: 8, max_wait: Duration::ZERO }
    }
}

/// Counters of a worker, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Prefill passes (one per admitted request).
    pub prefills: AtomicU64,
    /// Prompt tokens computed by prefills (cached prefix tokens excluded).
    pub prefill_tokens: AtomicU64,
    /// Decode passes.
    pub decode_steps: AtomicU64,
    /// Sum over decode passes of the rows in the batch.
    pub decode_rows: AtomicU64,
    /// Largest batch decoded together.
    pub max_rows: AtomicU64,
    /// Time in prefill passes (ns).
    pub prefill_ns: AtomicU64,
    /// Time in decode passes (ns).
    pub decode_ns: AtomicU64,
    /// Tokens fed by decode passes (more than the rows when forced tokens go in one pass).
    pub decode_tokens: AtomicU64,
}

impl EngineStats {
    /// `[prefills, prefill_tokens, decode_steps, decode_rows, max_rows, prefill_ns, decode_ns,
    /// decode_tokens]`.
    pub fn snapshot(&self) -> [u64; 8] {
        [
            &self.prefills,
            &self.prefill_tokens,
            &self.decode_steps,
            &self.decode_rows,
            &self.max_rows,
            &self.prefill_ns,
            &self.decode_ns,
            &self.decode_tokens,
        ]
        .map(|a| a.load(Ordering::Relaxed))
    }
}

/// Delivers a request's result.
pub type Reply = Box<dyn FnOnce(Result<Generation>) + Send>;

/// One request for the worker.
pub struct Job {
    pub prompt: Vec<u32>,
    /// Prefix cache slot of the request's role.
    pub prefix_slot: Option<usize>,
    pub seq: Sequence,
    pub cancel: CancellationToken,
    pub reply: Reply,
}

/// A handle to a worker thread.
pub struct Engine {
    tx: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    pub tokenizer: Arc<TextTokenizer>,
    pub stats: Arc<EngineStats>,
}

impl Engine {
    /// Starts the worker; `prefixes` are token ids of the prefixes to cache (slot = position).
    pub fn start(
        mut decoder: Decoder,
        tokenizer: Arc<TextTokenizer>,
        prefixes: Vec<Option<Vec<u32>>>,
        mut batch: BatchOptions,
    ) -> Result<Self> {
        let mut cache = PrefixCache::default();
        for p in prefixes {
            cache.add(&mut decoder, p)?;
        }
        if !decoder.spec.has_position_ids && batch.max_batch > 1 {
            warn!(
                model = %decoder.path.display(),
                "the model has no position_ids input, so left-padded batches would shift \
                 positions; decoding requests one at a time"
            );
            batch.max_batch = 1;
        }
        batch.max_batch = batch.max_batch.max(1);
        let (tx, rx) = mpsc::channel();
        let tok = tokenizer.clone();
        let stats = Arc::new(EngineStats::default());
        let worker_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("stepwire-onnx".into())
            .spawn(move || Worker { decoder, tok, cache, batch, stats: worker_stats }.run(rx))
            .map_err(|e| OnnxError::Inference(format!("cannot start the worker thread: {e}")))?;
        Ok(Engine { tx: Some(tx), thread: Some(thread), tokenizer, stats })
    }

    /// Queues a job; its reply is called exactly once.
    pub fn submit(&self, job: Job) {
        match &self.tx {
            Some(tx) => {
                if let Err(mpsc::SendError(job)) = tx.send(job) {
                    (job.reply)(Err(OnnxError::WorkerGone));
                }
            }
            None => (job.reply)(Err(OnnxError::WorkerGone)),
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                error!("the generation worker panicked");
            }
        }
    }
}

/// A running sequence.
struct Row {
    seq: Sequence,
    cancel: CancellationToken,
    reply: Reply,
    prompt_tokens: usize,
    cached_tokens: usize,
    /// Valid (non-padding) cache columns.
    valid: usize,
    /// Tokens to feed next: the chosen one, then any forced ones (see `Sequence::advance`).
    next: VecDeque<u32>,
}

struct Worker {
    decoder: Decoder,
    tok: Arc<TextTokenizer>,
    cache: PrefixCache,
    batch: BatchOptions,
    stats: Arc<EngineStats>,
}

impl Worker {
    fn run(mut self, rx: Receiver<Job>) {
        let mut rows: Vec<Row> = Vec::new();
        let mut kv: Option<Kv> = None;
        let mut open = true;
        while open || !rows.is_empty() {
            let mut jobs = Vec::new();
            if rows.is_empty() {
                match rx.recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => return,
                }
                let deadline = Instant::now() + self.batch.max_wait;
                while jobs.len() < self.batch.max_batch && !self.batch.max_wait.is_zero() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left) {
                        Ok(j) => jobs.push(j),
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => {
                            open = false;
                            break;
                        }
                    }
                }
            }
            while rows.len() + jobs.len() < self.batch.max_batch {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            let mut joining: Vec<(Row, Kv)> = Vec::new();
            for job in jobs {
                if let Some(r) = self.admit(job) {
                    joining.push(r);
                }
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

    /// Prefills a new request alone and picks its first token. Returns the row to join the
    /// batch, or `None` when the request is already answered.
    fn admit(&mut self, job: Job) -> Option<(Row, Kv)> {
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
                self.decoder.forward(&ids[p..], &mask, &pos, &entry.kv).map(|f| (f, p))
            }
            None => {
                let pos: Vec<i64> = (0..ids.len() as i64).collect();
                self.decoder.empty_kv(1).and_then(|past| self.decoder.forward(&ids, &mask, &pos, &past)).map(|f| (f, 0))
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

    /// Adds joining rows to the batch, laying out one left-padded cache for all rows.
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
        let merged = Kv::gather(&self.decoder.spec, &refs, len)?;
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
        let Some(past) = kv.as_ref() else { return Ok(()) };
        let p = past.len;
        let feed = if rows.len() == 1 { rows[0].next.len().max(1) } else { 1 };
        let mut ids = Vec::with_capacity(rows.len() * feed);
        let mut mask = Vec::with_capacity(rows.len() * (p + feed));
        let mut pos = Vec::with_capacity(rows.len() * feed);
        for r in rows.iter() {
            ids.extend(r.next.iter().take(feed).map(|&t| t as i64));
            mask.extend(std::iter::repeat_n(0i64, p - r.valid));
            mask.extend(std::iter::repeat_n(1i64, r.valid + feed));
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
            if let Some(next) = r.seq.advance(logits, &self.tok) {
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
                    Ok(r.seq.into_generation(&self.tok, r.prompt_tokens, r.cached_tokens))
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
        let compact = Kv::gather(&self.decoder.spec, &refs, len)?;
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
