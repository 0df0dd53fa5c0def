//! Soak and fault-injection harnesses for stepwire (issue #9): real `stepwire` processes, real
//! sockets and pipes, real bridge processes; every figure they print is measured, and every
//! promise they check fails the run when it does not hold.
//!
//! * [`soak`]: hours-long load compressed into minutes on the network server, the stdio server
//!   and the SDK's bridge client; resident memory, file descriptors and threads must not drift.
//! * [`chaos`]: bridges killed, stopped and corrupted while `stepwire run` records, the runner
//!   itself killed and resumed, and recordings that cannot be written; nothing finished may be
//!   lost or doubled and no process may outlive its run.

pub mod binaries;
pub mod chaos;
pub mod logging;
pub mod procfs;
pub mod soak;
pub mod stats;
pub mod verdict;
