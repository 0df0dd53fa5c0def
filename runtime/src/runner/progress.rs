//! What `stepwire run` shows while it runs: a progress bar on a terminal, else one log line per
//! finished episode. Display only; the runner's logic never reads it.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use stepwire_sdk::protocol::{EpisodeOutcome, EpisodeSummary};

pub(crate) struct EpisodeProgress {
    bar: ProgressBar,
    /// Keeps log lines above the bar while it is shown.
    _logs_around_bar: crate::cli::log_writer::BarGuard,
    done: usize,
    total: usize,
}

impl EpisodeProgress {
    pub fn new(total: usize, wanted: bool) -> Self {
        let bar = progress_bar(total as u64, wanted);
        let guard = crate::cli::log_writer::show_bar(&bar);
        EpisodeProgress { bar, _logs_around_bar: guard, done: 0, total }
    }

    pub fn finished(&mut self, s: &EpisodeSummary) {
        self.done += 1;
        report_episode(&self.bar, s, self.done, self.total);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn progress_bar(len: u64, wanted: bool) -> ProgressBar {
    if !wanted || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} eta {eta} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn report_episode(bar: &ProgressBar, s: &EpisodeSummary, done: usize, total: usize) {
    let outcome = outcome_name(s.outcome);
    if bar.is_hidden() {
        match &s.failure {
            Some(f) => tracing::info!(
                "[{done}/{total}] {} {outcome} score {} steps {}: {}",
                s.episode.id(),
                s.score,
                s.steps,
                f.lines().next().unwrap_or_default()
            ),
            None => tracing::info!("[{done}/{total}] {} {outcome} score {} steps {}", s.episode.id(), s.score, s.steps),
        }
    } else {
        if let Some(f) = &s.failure {
            bar.println(format!("{} failed: {}", s.episode.id(), f.lines().next().unwrap_or_default()));
        }
        bar.set_message(format!("{} {outcome}", s.episode.id()));
        bar.inc(1);
    }
}

fn outcome_name(o: EpisodeOutcome) -> &'static str {
    match o {
        EpisodeOutcome::Won => "won",
        EpisodeOutcome::Lost => "lost",
        EpisodeOutcome::Truncated => "truncated",
        EpisodeOutcome::Failed => "failed",
    }
}
