//! Whether a model fits in memory, asked before ONNX Runtime tries: a model that does not fit
//! would otherwise be killed by the kernel half-way through loading, with no message at all.

use std::path::Path;

use crate::error::{OnnxError, Result};

/// What one session holds per byte of weights on disk: the weights, and ONNX Runtime's
/// prepacked copies and arena on top (measured: a 1.98 GB fp32 export holds 2.5 GB resident).
const RESIDENT_PER_WEIGHT_BYTE: f64 = 1.25;

const GIB: f64 = (1u64 << 30) as f64;

/// Bytes of the model file and its external data (`model.onnx_data`, `model.onnx.data`: the
/// files beside it whose names extend its own).
pub fn model_bytes(onnx: &Path) -> u64 {
    let Some(name) = onnx.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return 0;
    };
    let dir = onnx.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(name.as_str()))
                .filter_map(|e| e.metadata().ok().filter(|m| m.is_file()).map(|m| m.len()))
                .sum()
        })
        .unwrap_or(0)
}

/// Memory this process can still take: the kernel's `MemAvailable`, and the cgroup's limit less
/// its use where a container sets one. `None` where neither can be read (not Linux).
pub fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:")?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    let read = |f: &str| std::fs::read_to_string(Path::new("/sys/fs/cgroup").join(f)).ok();
    let cgroup = read("memory.max")
        .and_then(|max| max.trim().parse::<u64>().ok())
        .map(|max| max.saturating_sub(read("memory.current").and_then(|c| c.trim().parse().ok()).unwrap_or(0)));
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// An error that says how much the model needs when one more session of it would not fit in
/// `available` bytes (checked against what the machine has now when `available` is `None`).
pub fn check_fits(onnx: &Path, available: Option<u64>) -> Result<()> {
    let Some(available) = available.or_else(available_bytes) else {
        return Ok(());
    };
    let weights = model_bytes(onnx);
    let needed = (weights as f64 * RESIDENT_PER_WEIGHT_BYTE) as u64;
    if needed <= available {
        return Ok(());
    }
    Err(OnnxError::model(
        onnx,
        format!(
            "needs about {:.1} GiB of memory for a session ({:.1} GiB of weights), and {:.1} GiB is \
             available; free memory, serve it with --one-session, or load an int4 copy \
             (`python -m stepwire_train quantize --model <dir> --out <dir>-int4`: its matrix \
             weights take about a seventh of fp32's bytes)",
            needed as f64 / GIB,
            weights as f64 / GIB,
            available as f64 / GIB
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_external_data_and_refuses_what_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let onnx = dir.path().join("model.onnx");
        std::fs::write(&onnx, vec![0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("model.onnx_data"), vec![0u8; 3000]).unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), vec![0u8; 500]).unwrap();
        assert_eq!(model_bytes(&onnx), 4000);
        assert!(check_fits(&onnx, Some(10_000)).is_ok());
        let message = check_fits(&onnx, Some(4000)).unwrap_err().to_string();
        assert!(message.contains("needs about") && message.contains("stepwire_train quantize"), "{message}");
    }

    #[test]
    fn this_machine_reports_available_memory() {
        assert!(available_bytes().is_some_and(|b| b > 0));
    }
}
