//! Counting and timing: answers by kind, unexpected outcomes with examples, latency
//! percentiles, and resident memory sampled once a second.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many unexpected outcomes are quoted in the report (all are counted).
const EXAMPLES_KEPT: usize = 20;

/// Outcomes by kind, shared by every session of a run.
#[derive(Debug, Default)]
pub struct Tally {
    inner: Mutex<TallyInner>,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TallyInner {
    /// Messages sent that expect an answer (or a deliberate disconnect).
    pub requests: u64,
    pub answers: BTreeMap<String, u64>,
    pub unexpected: u64,
    pub unexpected_examples: Vec<String>,
    /// Round trips per kind that is timed (steps).
    #[serde(skip)]
    pub latencies: BTreeMap<String, Histogram>,
}

impl Tally {
    pub fn request(&self) {
        self.lock().requests += 1;
    }

    pub fn expected(&self, kind: &str) {
        *self.lock().answers.entry(kind.to_string()).or_default() += 1;
    }

    /// An expected answer whose round trip is timed.
    pub fn timed(&self, kind: &str, took: Duration) {
        let mut t = self.lock();
        *t.answers.entry(kind.to_string()).or_default() += 1;
        t.latencies.entry(kind.to_string()).or_default().record(took);
    }

    pub fn unexpected(&self, what: impl Into<String>) {
        let what = what.into();
        tracing::warn!("unexpected: {what}");
        let mut t = self.lock();
        t.unexpected += 1;
        if t.unexpected_examples.len() < EXAMPLES_KEPT {
            t.unexpected_examples.push(what);
        }
    }

    pub fn snapshot(&self) -> TallyInner {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TallyInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// p50, p95, p99 and the maximum of a sample, in milliseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// Growth factor between histogram buckets: percentiles are exact to within 1 %.
const BUCKET_GROWTH: f64 = 1.01;
/// Buckets up to about 1,000 s (in microseconds); longer round trips land in the last one.
const BUCKETS: usize = 2100;

/// Durations in logarithmic buckets: fixed memory however long the soak runs (a growing list of
/// samples would show up as growth in the very RSS the bridge soak measures in this process).
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    max_us: f64,
}

impl Histogram {
    pub fn record(&mut self, took: Duration) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        let us = (took.as_secs_f64() * 1e6).max(1.0);
        let index = (us.ln() / BUCKET_GROWTH.ln()).ceil() as usize;
        self.counts[index.min(BUCKETS - 1)] += 1;
        self.count += 1;
        self.max_us = self.max_us.max(us);
    }

    /// Nearest-rank percentiles (each the upper edge of its bucket, never above the maximum).
    pub fn percentiles(&self) -> Percentiles {
        if self.count == 0 {
            return Percentiles::default();
        }
        let rank = |p: f64| {
            let wanted = ((p / 100.0 * self.count as f64).ceil() as u64).clamp(1, self.count);
            let mut seen = 0;
            for (i, c) in self.counts.iter().enumerate() {
                seen += c;
                if seen >= wanted {
                    return BUCKET_GROWTH.powi(i as i32).min(self.max_us) / 1000.0;
                }
            }
            self.max_us / 1000.0
        };
        Percentiles { count: self.count, p50: rank(50.0), p95: rank(95.0), p99: rank(99.0), max: self.max_us / 1000.0 }
    }
}

/// One RSS reading, seconds after sampling started.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RssSample {
    pub at_s: f64,
    pub rss_kib: u64,
}

/// Samples a process's VmRSS once a second on its own thread until stopped.
pub struct RssSampler {
    samples: Arc<Mutex<Vec<RssSample>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    started: Instant,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let thread = {
            let (samples, stop) = (samples.clone(), stop.clone());
            std::thread::Builder::new()
                .name("rss-sampler".into())
                .spawn(move || {
                    let mut next = started;
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(rss_kib) = crate::procfs::rss_kib(pid) {
                            let at_s = started.elapsed().as_secs_f64();
                            samples.lock().unwrap_or_else(|p| p.into_inner()).push(RssSample { at_s, rss_kib });
                        }
                        next += Duration::from_secs(1);
                        // Short naps so stopping never waits a whole second.
                        while Instant::now() < next && !stop.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                })
                .expect("starting the sampler thread")
        };
        RssSampler { samples, stop, thread: Some(thread), started }
    }

    /// Seconds since sampling started.
    pub fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn stop(mut self) -> Vec<RssSample> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The median RSS of the samples taken in `(to - window, to]`, or the last one before `to`.
pub fn rss_around(samples: &[RssSample], to_s: f64, window_s: f64) -> Option<u64> {
    let mut inside: Vec<u64> =
        samples.iter().filter(|s| s.at_s > to_s - window_s && s.at_s <= to_s).map(|s| s.rss_kib).collect();
    if inside.is_empty() {
        return samples.iter().rev().find(|s| s.at_s <= to_s).map(|s| s.rss_kib);
    }
    inside.sort_unstable();
    Some(inside[inside.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_within_one_percent() {
        let mut h = Histogram::default();
        for ms in 1..=100 {
            h.record(Duration::from_millis(ms));
        }
        let p = h.percentiles();
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.011;
        assert!(close(p.p50, 50.0) && close(p.p95, 95.0) && close(p.p99, 99.0), "{p:?}");
        assert_eq!((p.max, p.count), (100.0, 100));
        let mut one = Histogram::default();
        one.record(Duration::from_micros(7300));
        assert_eq!(one.percentiles().p99, 7.3, "never above the maximum");
        assert_eq!(Histogram::default().percentiles().count, 0);
    }

    #[test]
    fn rss_is_the_median_of_a_window() {
        let s: Vec<RssSample> = [(1.0, 100), (2.0, 300), (3.0, 200), (4.0, 900)]
            .map(|(at_s, rss_kib)| RssSample { at_s, rss_kib })
            .to_vec();
        assert_eq!(rss_around(&s, 3.0, 5.0), Some(200));
        assert_eq!(rss_around(&s, 4.5, 0.2), Some(900), "no sample inside: the last before");
        assert_eq!(rss_around(&s, 0.5, 1.0), None);
    }
}
