//! stepwire SDK: the protocol of both planes, its framing and transports, the Environment and
//! policy traits, and the STEP-HRL controller.

pub mod protocol;
pub mod policy;
pub mod environment;
pub mod schema;
pub mod framing;
pub mod transport;
pub mod rpc;
pub mod harness;
pub mod stepper;
pub mod rules;
pub mod controller;
pub mod client;
pub mod lifecycle;
