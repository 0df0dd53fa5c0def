//! Execution providers: CPU by default; CUDA when built with the `cuda` feature and available.

use ort::session::builder::SessionBuilder;
use tracing::warn;

/// Where the model runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Device {
    #[default]
    Cpu,
    /// The CUDA execution provider on this GPU; falls back to CPU with one warning when the
    /// build lacks the `cuda` feature or the machine lacks a GPU or the provider library.
    Cuda { device_id: i32 },
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda { device_id: 0 }),
            s => match s.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(device_id)) => Ok(Device::Cuda { device_id }),
                _ => Err(format!("unknown device {s:?} (expected cpu, cuda or cuda:N)")),
            },
        }
    }
}

/// Registers the device's execution provider; returns the builder and the device actually used.
pub(crate) fn apply(builder: SessionBuilder, device: Device) -> (SessionBuilder, Device) {
    match device {
        Device::Cpu => (builder, Device::Cpu),
        Device::Cuda { device_id } => cuda(builder, device_id),
    }
}

#[cfg(feature = "cuda")]
fn cuda(mut builder: SessionBuilder, device_id: i32) -> (SessionBuilder, Device) {
    use ort::ep::{ExecutionProvider, CUDA};
    use tracing::info;
    let ep = CUDA::default().with_device_id(device_id);
    match ep.register(&mut builder) {
        Ok(()) => {
            info!(device_id, "using the CUDA execution provider");
            (builder, Device::Cuda { device_id })
        }
        Err(e) => {
            warn!("CUDA requested but unavailable ({e}); running on CPU");
            (builder, Device::Cpu)
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda(builder: SessionBuilder, device_id: i32) -> (SessionBuilder, Device) {
    let _ = device_id;
    warn!("CUDA requested but stepwire-onnx was built without the `cuda` feature; running on CPU");
    (builder, Device::Cpu)
}
