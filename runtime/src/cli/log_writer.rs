//! Log output that cooperates with the progress bar: while a bar is on screen, each log line is
//! written with the bar suspended, so lines and bar never interleave.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use indicatif::ProgressBar;

static ACTIVE_BAR: OnceLock<Mutex<Option<ProgressBar>>> = OnceLock::new();

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
        let bar = slot().lock().unwrap_or_else(|p| p.into_inner()).clone();
        let write = || {
            let _ = std::io::stderr().lock().write_all(&self.0);
        };
        match bar {
            Some(bar) if !bar.is_hidden() => bar.suspend(write),
            _ => write(),
        }
    }
}
