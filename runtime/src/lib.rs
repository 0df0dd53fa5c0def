//! The stepwire runtime: ONNX policies, the agent server, the episode runner and the bridge
//! conformance checker. The `stepwire` binary is a thin CLI over these modules.

pub mod check_bridge;
pub mod cli;
pub mod envs;
pub mod policies;
pub mod report;
pub mod runner;
pub mod server;
