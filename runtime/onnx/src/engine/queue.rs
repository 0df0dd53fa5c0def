//! What the two sides of a worker share: requests not yet prefilled, and prefilled rows not yet
//! in the batch. One lock and one condition variable; every wait re-checks its condition.
//!
//! Who prefills a request: the decode thread when it is idle (so a lone request never changes
//! threads), the prefill thread while the decode thread is busy with a batch.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::decode::Admitted;
use super::Job;
use crate::error::OnnxError;

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    admitted: VecDeque<Admitted>,
    /// Jobs taken by the prefill thread and not yet handed over.
    prefilling: usize,
    /// The decode thread is running a batch (or prefilling for one).
    busy: bool,
    closed: bool,
}

impl State {
    /// The first prefilled rows, at most `room` of them.
    fn rows_up_to(&mut self, room: usize) -> Vec<Admitted> {
        let n = room.min(self.admitted.len());
        self.admitted.drain(..n).collect()
    }
}

#[derive(Default)]
pub(super) struct Queue {
    state: Mutex<State>,
    changed: Condvar,
}

/// What the idle decode thread gets.
pub(super) enum Work {
    Rows(Vec<Admitted>),
    Job(Job),
    Done,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(guard).unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a job, or answers it at once when the worker is shutting down.
    pub fn submit(&self, job: Job) {
        let mut s = self.lock();
        if s.closed {
            drop(s);
            (job.reply)(Err(OnnxError::WorkerGone));
            return;
        }
        s.jobs.push_back(job);
        drop(s);
        self.changed.notify_all();
    }

    /// No more jobs; both threads finish what is queued and stop.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Prefill thread: the next job to prefill while the decode thread is busy, with fewer than
    /// `room` rows already waiting; `None` once closed and drained.
    pub fn job_for_prefill(&self, room: usize) -> Option<Job> {
        let mut s = self.lock();
        loop {
            if s.busy && !s.jobs.is_empty() && s.admitted.len() + s.prefilling < room {
                s.prefilling += 1;
                return s.jobs.pop_front();
            }
            if s.closed && s.jobs.is_empty() {
                return None;
            }
            s = self.wait(s);
        }
    }

    /// Prefill thread: hands over a prefilled row (`None`: the job was answered at once).
    pub fn hand_over(&self, row: Option<Admitted>) {
        let mut s = self.lock();
        s.prefilling -= 1;
        s.admitted.extend(row);
        drop(s);
        self.changed.notify_all();
    }

    /// Decode thread, between steps: up to `room` prefilled rows, and (when `own_jobs`, i.e.
    /// there is no prefill thread) up to the rest of `room` in jobs to prefill itself.
    pub fn take(&self, room: usize, own_jobs: bool) -> (Vec<Admitted>, Vec<Job>) {
        let mut s = self.lock();
        let rows = s.rows_up_to(room);
        let n = rows.len();
        let m = if own_jobs { (room - n).min(s.jobs.len()) } else { 0 };
        let jobs = s.jobs.drain(..m).collect();
        drop(s);
        if n > 0 {
            self.changed.notify_all(); // room for the prefill thread again
        }
        (rows, jobs)
    }

    /// Decode thread, idle: waits for prefilled rows or a job, and marks itself busy.
    pub fn idle(&self, room: usize) -> Work {
        let mut s = self.lock();
        s.busy = false;
        loop {
            if !s.admitted.is_empty() {
                let rows = s.rows_up_to(room);
                return self.busy(s, Work::Rows(rows));
            }
            if let Some(job) = s.jobs.pop_front() {
                return self.busy(s, Work::Job(job));
            }
            if s.closed && s.prefilling == 0 {
                return Work::Done;
            }
            s = self.wait(s);
        }
    }

    /// Decode thread, having just started: waits until `want` requests are queued, prefilling or
    /// prefilled, or until `deadline` (`BatchOptions::max_wait`).
    pub fn settle(&self, deadline: Instant, want: usize) {
        let mut s = self.lock();
        while s.jobs.len() + s.prefilling + s.admitted.len() + 1 < want && !s.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            s = self.changed.wait_timeout(s, left).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
        }
    }

    fn busy(&self, mut s: MutexGuard<'_, State>, work: Work) -> Work {
        s.busy = true;
        drop(s);
        self.changed.notify_all();
        work
    }
}

/// Held by each thread: if the thread panics, nobody would serve the queue, so every waiting
/// request is answered with an error and new ones are refused.
pub(super) struct AbandonOnPanic(pub Arc<Queue>);

impl Drop for AbandonOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut s = self.0.lock();
        s.closed = true;
        let jobs: Vec<Job> = s.jobs.drain(..).collect();
        let rows: Vec<Admitted> = s.admitted.drain(..).collect();
        drop(s);
        self.0.changed.notify_all();
        for job in jobs {
            (job.reply)(Err(OnnxError::WorkerGone));
        }
        for (row, _) in rows {
            (row.reply)(Err(OnnxError::WorkerGone));
        }
    }
}
