//! stepwire SDK: the protocol of both planes, its framing and transports, the Environment and
//! policy traits, and the STEP-HRL controller.

pub mod client;
pub mod controller;
pub mod environment;
pub mod framing;
pub mod harness;
pub mod lifecycle;
pub mod policy;
pub mod protocol;
pub mod rpc;
pub mod rules;
pub mod schema;
pub mod stepper;
pub mod transport;
