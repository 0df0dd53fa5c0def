//! Protocol types of both planes, version 1.
//!
//! This module is types only: no I/O, no transport. The JSON Schemas in `schemas/` are generated
//! from these types (`stepwire schema`), so they are the single source of truth for every consumer.

pub mod agent;
pub mod environment;
pub mod errors;
pub mod jsonrpc;
pub mod lifecycle;
pub mod methods;
pub mod observation;
pub mod record;
pub mod usage;

pub use agent::*;
pub use environment::*;
pub use errors::*;
pub use jsonrpc::*;
pub use lifecycle::*;
pub use observation::*;
pub use record::*;
pub use usage::*;

/// The protocol's major version. Peers with a different major refuse `initialize`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Every major version this build speaks.
pub const SUPPORTED_PROTOCOL_VERSIONS: &[u32] = &[PROTOCOL_VERSION];

/// Free-form metadata any object may carry; peers pass it through and never interpret it.
pub type Meta = Option<serde_json::Map<String, serde_json::Value>>;
