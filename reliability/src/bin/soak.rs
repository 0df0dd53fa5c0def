//! `soak`: see `soak --help` and `stepwire_reliability::soak`.

use std::process::ExitCode;

use clap::Parser;
use stepwire_reliability::soak::{self, SoakArgs};

#[tokio::main]
async fn main() -> ExitCode {
    stepwire_reliability::logging::init();
    let args = SoakArgs::parse();
    let json = args.json;
    match soak::run(args).await {
        Ok(report) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("the report serialises"));
            } else {
                print!("{}", report.text());
            }
            report.criteria.exit_code()
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
