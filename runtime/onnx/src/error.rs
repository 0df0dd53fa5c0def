//! The crate's error type: every variant names the file or field at fault and what to do.

use std::path::PathBuf;

use stepwire_sdk::policy::PolicyError;

/// Why loading or running an ONNX policy failed.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The manifest is missing, unreadable or invalid.
    #[error("{}: {message}", path.display())]
    Manifest { path: PathBuf, message: String },
    /// The ONNX Runtime shared library could not be found or loaded.
    #[error("ONNX Runtime: {0}")]
    Library(String),
    /// The tokenizer file could not be loaded or lacks a token the manifest names.
    #[error("{}: {message}", path.display())]
    Tokenizer { path: PathBuf, message: String },
    /// The ONNX model could not be loaded or does not have the expected inputs and outputs.
    #[error("{}: {message}", path.display())]
    Model { path: PathBuf, message: String },
    /// ONNX Runtime failed while running the model.
    #[error("inference failed: {0}")]
    Inference(String),
    /// The request cannot be served as given.
    #[error("{0}")]
    InvalidInput(String),
    /// The request is larger than the policy's limits allow (see [`Limits`](crate::Limits)).
    #[error("{0}")]
    LimitExceeded(String),
    /// The caller cancelled the request.
    #[error("cancelled")]
    Cancelled,
    /// The generation worker thread is gone (it panicked or the policy is shutting down).
    #[error("the generation worker has stopped")]
    WorkerGone,
}

impl OnnxError {
    pub(crate) fn manifest(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        OnnxError::Manifest { path: path.into(), message: message.into() }
    }

    pub(crate) fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        OnnxError::Model { path: path.into(), message: message.into() }
    }

    pub(crate) fn tokenizer(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        OnnxError::Tokenizer { path: path.into(), message: message.into() }
    }
}

impl From<OnnxError> for PolicyError {
    fn from(e: OnnxError) -> Self {
        match e {
            OnnxError::Cancelled => PolicyError::Cancelled,
            OnnxError::InvalidInput(m) => PolicyError::InvalidInput(m),
            OnnxError::LimitExceeded(m) => PolicyError::LimitExceeded(m),
            other => PolicyError::Failed(other.to_string()),
        }
    }
}

pub type Result<T, E = OnnxError> = std::result::Result<T, E>;
