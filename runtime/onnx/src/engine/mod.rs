//! The generation worker of one model: continuous batching on two threads.
//!
//! A new request is first admitted ([`prefill`]): computed alone on top of its role's cached
//! prefix, with its first token picked. The row then joins the running batch on the decode thread
//! ([`decode`]): the caches of all running sequences are laid side by side, padded to a common
//! length (left-padded for Optimum exports; right-padded, in one buffer the model writes in
//! place, for onnxruntime-genai's builder exports), and each decode step runs the whole batch in
//! one model call with per-row attention masks and position ids. Finished or cancelled rows leave the batch between steps.
//! Tokens forced by a constraint need no logits: a lone row feeds a whole forced run in one pass.
//!
//! Who admits ([`queue`]): the decode thread when it is idle, so a lone request stays on one
//! thread; while it runs a batch, a prefill thread with its own session
//! ([`BatchOptions::overlap_prefill`]), so new requests are prefilled on a second core as the
//! batch decodes. Without the prefill thread the decode thread admits between steps.

mod decode;
mod prefill;
mod queue;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::decoder::{Decoder, Layout};
use crate::error::{OnnxError, Result};
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
    /// Prefill on a second session, at the same time as the batch decodes. The second session is
    /// built from the first one's model bytes and shares its weights where ONNX Runtime can
    /// ([`Decoder::load_again`]). Off: one session, prefill and decode take turns.
    pub overlap_prefill: bool,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions { max_batch: 8, max_wait: Duration::ZERO, overlap_prefill: true }
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
    /// Time to build the prefill thread's session (ns; 0 without one).
    pub second_session_load_ns: AtomicU64,
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

/// A handle to the worker of one model (its decode thread, and its prefill thread if any).
pub struct Engine {
    queue: Arc<queue::Queue>,
    threads: Vec<JoinHandle<()>>,
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
        if decoder.spec.layout == Layout::Optimum && !decoder.spec.has_position_ids && batch.max_batch > 1 {
            warn!(
                model = %decoder.path.display(),
                "the model has no position_ids input, so left-padded batches would shift \
                 positions; decoding requests one at a time"
            );
            batch.max_batch = 1;
        }
        batch.max_batch = batch.max_batch.max(1);
        let stats = Arc::new(EngineStats::default());
        let queue = Arc::new(queue::Queue::default());
        let admission = Arc::new(prefill::Admission { tok: tokenizer.clone(), cache, stats: stats.clone() });
        // A second session that cannot be had (memory, a GPU that is full) costs speed, not service.
        let started = std::time::Instant::now();
        let prefill_session = batch.overlap_prefill.then(|| decoder.load_again()).and_then(|second| {
            second
                .map_err(|e| warn!(model = %decoder.path.display(), "no second session for overlapped prefill ({e}); using one"))
                .ok()
        });
        if prefill_session.is_some() {
            stats.second_session_load_ns.store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        let decoding = decode::Decoding {
            decoder,
            admission: admission.clone(),
            queue: queue.clone(),
            batch,
            stats: stats.clone(),
            prefill_thread: prefill_session.is_some(),
        };
        let spawn = |name: &str, work: Box<dyn FnOnce() + Send>| {
            let guard = queue::AbandonOnPanic(queue.clone());
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    work();
                    drop(guard);
                })
                .map_err(|e| OnnxError::Inference(format!("cannot start the {name} thread: {e}")))
        };
        // Built before the first thread starts, so a failed start closes the queue behind it.
        let mut engine = Engine { queue: queue.clone(), threads: Vec::new(), tokenizer, stats };
        engine.threads.push(spawn("stepwire-decode", Box::new(move || decoding.run()))?);
        if let Some(session) = prefill_session {
            let (queue, room) = (queue.clone(), batch.max_batch);
            engine
                .threads
                .push(spawn("stepwire-prefill", Box::new(move || prefill::run(session, admission, queue, room)))?);
        }
        Ok(engine)
    }

    /// Queues a job; its reply is called exactly once.
    pub fn submit(&self, job: Job) {
        self.queue.submit(job);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Both threads finish what is queued, then stop.
        self.queue.close();
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                error!("a generation thread panicked");
            }
        }
    }
}
