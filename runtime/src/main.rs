use std::time::Duration;

use clap::Parser;
use stepwire_runtime::cli::{init_tracing, main_with, Cli};

/// How long an idle blocking-pool thread lives. `serve --stdio` reads stdin and writes stdout on
/// tokio's blocking pool, which grows under load; tokio's default keeps the idle threads 10 s,
/// so a host that went quiet would still see them. One second gives them back promptly.
const BLOCKING_THREAD_KEEP_ALIVE: Duration = Duration::from_secs(1);

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_keep_alive(BLOCKING_THREAD_KEEP_ALIVE)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main_with(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
