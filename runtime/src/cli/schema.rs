//! `stepwire schema`: write the generated JSON Schemas, or check them for drift.

use std::path::PathBuf;
use std::process::ExitCode;

/// Write `schemas/*.json` from the protocol types, or `--check` that the files are current.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Directory of the schema files.
    #[arg(long, default_value = "schemas")]
    pub out: PathBuf,
    /// Only compare; exit 1 and list the differences when the files are not current.
    #[arg(long)]
    pub check: bool,
}

pub fn run(args: SchemaArgs) -> anyhow::Result<ExitCode> {
    if args.check {
        let problems = stepwire_sdk::schema::drift(&args.out)?;
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
    let files = stepwire_sdk::schema::write_all(&args.out)?;
    println!("wrote {} schema files to {}", files.len(), args.out.display());
    Ok(ExitCode::SUCCESS)
}
