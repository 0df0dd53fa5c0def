//! Pass or fail: each promise checked becomes a criterion with what was measured; any failed
//! criterion makes the harness exit non-zero and say which.

use std::process::ExitCode;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Criterion {
    pub name: String,
    pub passed: bool,
    /// What was measured, in words and numbers.
    pub measured: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(transparent)]
pub struct Criteria(Vec<Criterion>);

impl Criteria {
    pub fn check(&mut self, name: &str, passed: bool, measured: impl Into<String>) {
        self.0.push(Criterion { name: name.into(), passed, measured: measured.into() });
    }

    pub fn passed(&self) -> bool {
        self.0.iter().all(|c| c.passed)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Criterion> {
        self.0.iter()
    }

    /// Lines for a text report: `PASS name: measured`.
    pub fn lines(&self) -> String {
        self.0
            .iter()
            .map(|c| format!("  {} {}: {}\n", if c.passed { "PASS" } else { "FAIL" }, c.name, c.measured))
            .collect()
    }

    /// Says on stderr which criteria failed; the exit status the harness should end with.
    pub fn exit_code(&self) -> ExitCode {
        let failed: Vec<&str> = self.0.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
        if failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            eprintln!("FAILED: {}", failed.join(", "));
            ExitCode::FAILURE
        }
    }
}

/// A harness's report: printed as text or JSON, and judged by its criteria.
pub trait Report: serde::Serialize {
    fn text(&self) -> String;
    fn criteria(&self) -> &Criteria;
}

/// Prints the report (or the error that stopped the run) and gives the exit status: the
/// criteria's, or 2 when the harness itself could not run.
pub fn finish<R: Report>(outcome: anyhow::Result<R>, json: bool) -> ExitCode {
    match outcome {
        Ok(report) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("the report serialises"));
            } else {
                print!("{}", report.text());
            }
            report.criteria().exit_code()
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
