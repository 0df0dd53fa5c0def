//! The method set, declared once: each method's name, plane, kind, params and result.
//!
//! From the one [`methods!`] table below come the typed markers ([`EnvStep`], ...), the list
//! [`METHODS`] (in `schemas/protocol.json`, read by the Python SDK), and [`visit_methods`], which
//! the schema generator and check-bridge walk to get every method's types.

use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

use super::*;

/// A request method: its name and the types of its params and result.
pub trait RequestMethod {
    const NAME: &'static str;
    type Params: Serialize + DeserializeOwned + JsonSchema + Send + 'static;
    type Result: Serialize + DeserializeOwned + JsonSchema + Send + 'static;
}

/// A notification method: its name and the type of its params.
pub trait NotificationMethod {
    const NAME: &'static str;
    type Params: Serialize + DeserializeOwned + JsonSchema + Send + 'static;
}

/// Where a method is served: both planes share the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Plane {
    /// `initialize`, `shutdown`, cancellation, progress and logs, on every connection.
    Lifecycle,
    /// Served by a bridge (an environment), called by stepwire.
    Environment,
    /// Served by stepwire's agent server, called by a host.
    Agent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MethodKind {
    Request,
    Notification,
}

/// One method as [`METHODS`] and `schemas/protocol.json` list it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MethodInfo {
    pub name: &'static str,
    pub kind: MethodKind,
    pub plane: Plane,
    /// Whether `schemas/` has files for its params (and result): not for `shutdown` and `exit`,
    /// whose params are null.
    pub schema_files: bool,
    pub summary: &'static str,
}

impl MethodInfo {
    /// The method's file-name stem under `schemas/`: `env/step` -> `env.step`.
    pub fn stem(&self) -> String {
        self.name.trim_start_matches("$/").replace('/', ".")
    }
}

/// Walks every method with its types: see [`visit_methods`].
pub trait MethodVisitor {
    fn request<M: RequestMethod>(&mut self, info: &MethodInfo);
    fn notification<N: NotificationMethod>(&mut self, info: &MethodInfo);
}

macro_rules! method_marker {
    (Request $ty:ident $name:literal $summary:literal $params:ty => $result:ty) => {
        #[doc = concat!("`", $name, "`: ", $summary)]
        pub enum $ty {}
        impl RequestMethod for $ty {
            const NAME: &'static str = $name;
            type Params = $params;
            type Result = $result;
        }
    };
    (Notification $ty:ident $name:literal $summary:literal $params:ty) => {
        #[doc = concat!("`", $name, "`: ", $summary)]
        pub enum $ty {}
        impl NotificationMethod for $ty {
            const NAME: &'static str = $name;
            type Params = $params;
        }
    };
}

macro_rules! method_visit {
    ($visitor:ident Request $ty:ident $info:expr) => {
        $visitor.request::<$ty>($info)
    };
    ($visitor:ident Notification $ty:ident $info:expr) => {
        $visitor.notification::<$ty>($info)
    };
}

macro_rules! methods {
    ($($plane:ident $kind:ident $ty:ident $name:literal ($params:ty $(=> $result:ty)?), files: $files:literal,
       $summary:literal;)*) => {
        $(method_marker!($kind $ty $name $summary $params $(=> $result)?);)*

        /// Every method of the protocol, in declaration order.
        pub const METHODS: &[MethodInfo] = &[$(MethodInfo {
            name: $name,
            kind: MethodKind::$kind,
            plane: Plane::$plane,
            schema_files: $files,
            summary: $summary,
        }),*];

        /// Calls `visitor` once for every method, with its types, in [`METHODS`] order.
        pub fn visit_methods(visitor: &mut impl MethodVisitor) {
            let mut infos = METHODS.iter();
            $(method_visit!(visitor $kind $ty infos.next().expect("one info per method"));)*
        }
    };
}

// Adding a method: a line here, its params and result types (in this module's siblings), and
// its handler (a bridge's `Environment`, or the agent service). Schemas, `schemas/protocol.json`,
// check-bridge's validation and the Python SDK's method list follow from this table.
methods! {
    Lifecycle Request Initialize "initialize" (InitializeParams => InitializeResult), files: true,
        "version and capabilities, both ways";
    Lifecycle Notification Initialized "initialized" (InitializedParams), files: true,
        "the client has read the `initialize` result";
    Lifecycle Request Shutdown "shutdown" (Option<Value> => Option<Value>), files: false,
        "finish the work in flight; only `exit` may follow";
    Lifecycle Notification Exit "exit" (Option<Value>), files: false,
        "end the process: code 0 after `shutdown`, 1 otherwise";
    Lifecycle Notification CancelRequest "$/cancelRequest" (CancelParams), files: true,
        "stop a request in flight; it is answered -32800 unless already answered";
    Lifecycle Notification Progress "$/progress" (ProgressParams), files: true,
        "progress of long work (either direction)";
    Lifecycle Notification LogMessage "$/logMessage" (LogMessageParams), files: true,
        "a log line for the other side's log (either direction)";

    Environment Request EnvTasks "env/tasks" (TasksParams => TasksResult), files: true,
        "the tasks, their splits and variation counts";
    Environment Request EnvReset "env/reset" (ResetParams => ResetResult), files: true,
        "start an episode of a task's variation";
    Environment Request EnvStep "env/step" (StepParams => StepResult), files: true,
        "take one action in the current episode";
    Environment Request EnvAdmissibleActions "env/admissibleActions"
        (AdmissibleActionsParams => AdmissibleActionsResult), files: true,
        "the actions valid now (when announced in capabilities)";
    Environment Request EnvExpertAction "env/expertAction" (ExpertActionParams => ExpertActionResult), files: true,
        "the expert's next action, and the subtask it serves (when announced)";

    Agent Request AgentPlan "agent/plan" (PlanParams => PlanResult), files: true,
        "the high-level policy: the next subtask";
    Agent Request AgentAct "agent/act" (ActParams => ActResult), files: true,
        "the low-level policy: the next action, and whether the subtask is done";
    Agent Request AgentProgress "agent/progress" (ProgressUpdateParams => ProgressUpdateResult), files: true,
        "the local-progress module: the updated summary";
    Agent Request AgentStep "agent/step" (AgentStepParams => AgentStepResult), files: true,
        "one whole controller step: plan if needed, act, update progress";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_visited_in_order() {
        struct Names(Vec<&'static str>);
        impl MethodVisitor for Names {
            fn request<M: RequestMethod>(&mut self, info: &MethodInfo) {
                assert_eq!(M::NAME, info.name);
                self.0.push(M::NAME);
            }
            fn notification<N: NotificationMethod>(&mut self, info: &MethodInfo) {
                assert_eq!(N::NAME, info.name);
                self.0.push(N::NAME);
            }
        }
        let mut names = Names(Vec::new());
        visit_methods(&mut names);
        assert_eq!(names.0, METHODS.iter().map(|m| m.name).collect::<Vec<_>>());
        let unique: std::collections::BTreeSet<_> = names.0.iter().collect();
        assert_eq!(unique.len(), METHODS.len());
    }
}
