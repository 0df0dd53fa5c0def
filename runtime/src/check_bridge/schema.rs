//! JSON Schemas of the protocol types, compiled once, for validating what a bridge sends.

use std::collections::HashMap;

use jsonschema::Validator;
use schemars::JsonSchema;
use serde_json::Value;
use stepwire_sdk::protocol::methods::{
    visit_methods, MethodInfo, MethodVisitor, NotificationMethod, Plane, RequestMethod, METHODS,
};
use stepwire_sdk::protocol::{Message, UnsupportedVersionData};

/// Which protocol type a value should match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Message,
    UnsupportedVersionData,
    /// The result of the request method named.
    ResultOf(&'static str),
}

pub struct Schemas {
    message: Validator,
    unsupported_version: Validator,
    /// A bridge's results: the environment plane's requests and the lifecycle's.
    results: HashMap<&'static str, Validator>,
}

fn compile<T: JsonSchema>() -> anyhow::Result<Validator> {
    let schema = serde_json::to_value(schemars::schema_for!(T))?;
    jsonschema::validator_for(&schema).map_err(|e| anyhow::anyhow!("schema of {}: {e}", std::any::type_name::<T>()))
}

/// Compiles the result schema of every request a bridge answers.
struct BridgeResults(anyhow::Result<HashMap<&'static str, Validator>>);

impl MethodVisitor for BridgeResults {
    fn request<M: RequestMethod>(&mut self, info: &MethodInfo) {
        if matches!(info.plane, Plane::Environment | Plane::Lifecycle) {
            if let Ok(results) = &mut self.0 {
                match compile::<M::Result>() {
                    Ok(v) => {
                        results.insert(M::NAME, v);
                    }
                    Err(e) => self.0 = Err(e),
                }
            }
        }
    }

    fn notification<N: NotificationMethod>(&mut self, _: &MethodInfo) {}
}

impl Schemas {
    pub fn new() -> anyhow::Result<Self> {
        let mut results = BridgeResults(Ok(HashMap::new()));
        visit_methods(&mut results);
        Ok(Schemas {
            message: compile::<Message>()?,
            unsupported_version: compile::<UnsupportedVersionData>()?,
            results: results.0?,
        })
    }

    /// `Err` lists the first few violations.
    pub fn validate(&self, kind: Kind, value: &Value) -> Result<(), String> {
        let validator = match kind {
            Kind::Message => &self.message,
            Kind::UnsupportedVersionData => &self.unsupported_version,
            Kind::ResultOf(method) => match self.results.get(method) {
                Some(v) => v,
                None => return Ok(()),
            },
        };
        let errors: Vec<String> =
            validator.iter_errors(value).take(3).map(|e| format!("at `{}`: {e}", e.instance_path)).collect();
        if errors.is_empty() {
            return Ok(());
        }
        let what = match kind {
            Kind::ResultOf(method) => format!("the `{method}` result"),
            other => format!("{other:?}"),
        };
        Err(errors.iter().map(|e| format!("{what} {e}")).collect::<Vec<_>>().join("; "))
    }

    /// The schema a method's result must match: any request of the protocol.
    pub fn result_kind(method: &str) -> Option<Kind> {
        METHODS.iter().find(|m| m.name == method).map(|m| Kind::ResultOf(m.name))
    }
}
