//! `stepwire schema`: write the generated JSON Schemas and `protocol.json`, or check them for drift.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use stepwire_sdk::schema;

/// Write `schemas/*.json` (and the Python SDK's copy of `protocol.json`) from the protocol types,
/// or `--check` that the files are current.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Directory of the schema files.
    #[arg(long, default_value = "schemas")]
    pub out: PathBuf,
    /// Where the Python bridge SDK reads the method list, error codes and protocol version from
    /// (a copy of `schemas/protocol.json` inside the package). Empty to skip.
    #[arg(long, default_value = "bridges/python/stepwire_bridge/protocol.json")]
    pub python_sdk: PathBuf,
    /// Only compare; exit 1 and list the differences when the files are not current.
    #[arg(long)]
    pub check: bool,
}

fn python_copy(args: &SchemaArgs) -> Option<&Path> {
    (!args.python_sdk.as_os_str().is_empty()).then_some(args.python_sdk.as_path())
}

pub fn run(args: SchemaArgs) -> anyhow::Result<ExitCode> {
    let summary = schema::render(&schema::protocol_summary());
    if args.check {
        let mut problems = schema::drift(&args.out)?;
        if let Some(copy) = python_copy(&args) {
            match std::fs::read_to_string(copy) {
                Ok(have) if have == summary => {}
                Ok(_) => problems.push(format!("{}: differs from the protocol types", copy.display())),
                Err(e) => problems.push(format!("{}: {e}", copy.display())),
            }
        }
        if problems.is_empty() {
            println!("schemas in {} are current", args.out.display());
            return Ok(ExitCode::SUCCESS);
        }
        for p in &problems {
            eprintln!("{p}");
        }
        eprintln!("regenerate with: cargo run -p stepwire-runtime -- schema --out {}", args.out.display());
        return Ok(ExitCode::FAILURE);
    }
    let files = schema::write_all(&args.out)?;
    println!("wrote {} files to {}", files.len(), args.out.display());
    if let Some(copy) = python_copy(&args) {
        std::fs::write(copy, summary)?;
        println!("wrote {}", copy.display());
    }
    Ok(ExitCode::SUCCESS)
}
