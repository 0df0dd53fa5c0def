//! JSON Schemas of the protocol types, compiled once, for validating what a bridge sends.

use jsonschema::Validator;
use serde_json::Value;
use stepwire_sdk::protocol::{
    AdmissibleActionsResult, ExpertActionResult, InitializeResult, Message, ResetResult, StepResult, TasksResult,
    UnsupportedVersionData,
};

/// Which protocol type a value should match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Message,
    InitializeResult,
    TasksResult,
    ResetResult,
    StepResult,
    AdmissibleActionsResult,
    ExpertActionResult,
    UnsupportedVersionData,
}

pub struct Schemas {
    validators: Vec<(Kind, Validator)>,
}

macro_rules! compile {
    ($($kind:ident => $ty:ty),* $(,)?) => {{
        let mut v = Vec::new();
        $(
            let schema = serde_json::to_value(schemars::schema_for!($ty))?;
            let validator = jsonschema::validator_for(&schema)
                .map_err(|e| anyhow::anyhow!("schema of {}: {e}", stringify!($ty)))?;
            v.push((Kind::$kind, validator));
        )*
        v
    }};
}

impl Schemas {
    pub fn new() -> anyhow::Result<Self> {
        let validators = compile!(
            Message => Message,
            InitializeResult => InitializeResult,
            TasksResult => TasksResult,
            ResetResult => ResetResult,
            StepResult => StepResult,
            AdmissibleActionsResult => AdmissibleActionsResult,
            ExpertActionResult => ExpertActionResult,
            UnsupportedVersionData => UnsupportedVersionData,
        );
        Ok(Schemas { validators })
    }

    /// `Err` lists the first few violations.
    pub fn validate(&self, kind: Kind, value: &Value) -> Result<(), String> {
        let Some((_, validator)) = self.validators.iter().find(|(k, _)| *k == kind) else {
            return Ok(());
        };
        let errors: Vec<String> =
            validator.iter_errors(value).take(3).map(|e| format!("{kind:?} at `{}`: {e}", e.instance_path)).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// The schema a method's result must match, when it has one.
    pub fn result_kind(method: &str) -> Option<Kind> {
        Some(match method {
            "initialize" => Kind::InitializeResult,
            "env/tasks" => Kind::TasksResult,
            "env/reset" => Kind::ResetResult,
            "env/step" => Kind::StepResult,
            "env/admissibleActions" => Kind::AdmissibleActionsResult,
            "env/expertAction" => Kind::ExpertActionResult,
            _ => return None,
        })
    }
}
