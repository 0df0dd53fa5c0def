//! `soak`: see `soak --help` and `stepwire_reliability::soak`.

use std::process::ExitCode;

use clap::Parser;
use stepwire_reliability::soak::{self, SoakArgs};

#[tokio::main]
async fn main() -> ExitCode {
    stepwire_reliability::logging::init();
    let args = SoakArgs::parse();
    let json = args.json;
    stepwire_reliability::verdict::finish(soak::run(args).await, json)
}
