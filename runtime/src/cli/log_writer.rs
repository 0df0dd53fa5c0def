//! Log output that cooperates with the progress bar: while a bar is on screen, each log line is
//! written with the bar suspended, so lines and bar never interleave.

use std::cell::Cell;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use indicatif::ProgressBar;

static ACTIVE_BAR: OnceLock<Mutex<Option<ProgressBar>>> = OnceLock::new();

thread_local! {
    /// Set while this thread is inside `ProgressBar::suspend`: the bar's state lock is held then,
    /// so a log written from within (for example `bar.suspend(|| tracing::warn!(..))`) must not
    /// touch the bar again or it would deadlock on that lock.
    static IN_SUSPEND: Cell<bool> = const { Cell::new(false) };
}

fn slot() -> &'static Mutex<Option<ProgressBar>> {
    ACTIVE_BAR.get_or_init(|| Mutex::new(None))
}

/// Routes logs around `bar` until the returned guard is dropped.
pub fn show_bar(bar: &ProgressBar) -> BarGuard {
    *slot().lock().unwrap_or_else(|p| p.into_inner()) = Some(bar.clone());
    BarGuard
}

pub struct BarGuard;

impl Drop for BarGuard {
    fn drop(&mut self) {
        *slot().lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// A `tracing` writer for stderr that buffers one event and writes it around the bar.
#[derive(Default)]
pub struct StderrAroundBar(Vec<u8>);

impl Write for StderrAroundBar {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for StderrAroundBar {
    fn drop(&mut self) {
        let write = || {
            let _ = std::io::stderr().lock().write_all(&self.0);
        };
        if IN_SUSPEND.get() {
            return write();
        }
        let bar = slot().lock().unwrap_or_else(|p| p.into_inner()).clone();
        match bar {
            Some(bar) if !bar.is_hidden() => bar.suspend(|| {
                IN_SUSPEND.set(true);
                write();
                IN_SUSPEND.set(false);
            }),
            _ => write(),
        }
    }
}
