//! `chaos`: see `chaos --help` and `stepwire_reliability::chaos`. Also the bridge wrapper the
//! chaos runs use (`chaos wrap-bridge PROGRAM [ARGS]`), so one binary carries both.

use std::process::ExitCode;

use clap::Parser;
use stepwire_reliability::chaos::{self, wrapper, ChaosArgs};

#[tokio::main]
async fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).is_some_and(|a| a == "wrap-bridge") {
        let Some(program) = argv.get(2) else {
            eprintln!("usage: chaos wrap-bridge PROGRAM [ARGS]");
            return ExitCode::from(64);
        };
        std::process::exit(wrapper::wrap(program, &argv[3..]).await);
    }
    stepwire_reliability::logging::init();
    let args = ChaosArgs::parse();
    let json = args.json;
    stepwire_reliability::verdict::finish(chaos::run(args).await, json)
}
