//! ONNX Runtime policies for stepwire.
//!
//! Load a model directory once with [`OnnxPolicy::load`] and share the `Arc`: it implements the
//! SDK's [`HighLevelPolicy`](stepwire_sdk::policy::HighLevelPolicy),
//! [`LowLevelPolicy`](stepwire_sdk::policy::LowLevelPolicy) and
//! [`ProgressPolicy`](stepwire_sdk::policy::ProgressPolicy).
//!
//! Inside: a manifest ([`manifest`]), the tokenizer ([`tokenize`]), the Optimum decoder
//! ([`decoder`], with load-time [`graph`] rewrites) and its key/value cache ([`kv`]), per-request decoding state ([`sequence`],
//! [`sampling`], [`trie`]), a worker that batches requests ([`engine`]) and reuses template
//! prefixes ([`prefix_cache`]).

#[doc(hidden)]
pub mod bench_cases;
pub mod decoder;
pub mod device;
pub mod engine;
pub mod error;
pub mod graph;
pub mod kv;
pub mod limits;
pub mod manifest;
pub mod memory;
pub mod ortlib;
pub mod policy;
pub mod prefix_cache;
pub mod prompt;
pub mod reference;
pub mod sampling;
pub mod sequence;
pub mod template;
pub mod tokenize;
pub mod trie;
pub mod weights;

pub use device::Device;
pub use engine::BatchOptions;
pub use error::OnnxError;
pub use limits::Limits;
pub use manifest::{PlannerSource, ProgressSource};
pub use policy::{GenerateRequest, LoadOptions, OnnxPolicy};
pub use sequence::{Finish, Generation};
