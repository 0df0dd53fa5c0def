//! Progress goes to stderr through `tracing`; results go to stdout, printed by the binaries.

/// Logs at `info` unless `STEPWIRE_LOG` says otherwise (same variable as the runtime).
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STEPWIRE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}
