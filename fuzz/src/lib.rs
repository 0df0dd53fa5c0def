//! Fuzzing what stepwire reads from others: the frame decoder (bytes split at any point), the
//! JSON-RPC messages of both planes decoded into every protocol type, policy manifests and the
//! recordings `--resume` reads.
//!
//! Inputs are seeds from the repository (the schema examples, the bundled manifests, recorded
//! episodes, `fuzz/corpus/`) changed by random edits, or generated from scratch, with `proptest`
//! drawing them; a failing input is shrunk to a small one. A target passes when no input panics,
//! none takes longer than the watchdog allows, and the decoder never holds more than its limit.

pub mod corpus;
pub mod mutate;
pub mod runner;
pub mod targets;
