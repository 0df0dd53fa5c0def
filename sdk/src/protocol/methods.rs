//! Method names, and the typed pairing of each method with its params and result.

use serde::{de::DeserializeOwned, Serialize};

use super::*;

/// A request method: its name and the types of its params and result.
pub trait RequestMethod {
    const NAME: &'static str;
    type Params: Serialize + DeserializeOwned + Send + 'static;
    type Result: Serialize + DeserializeOwned + Send + 'static;
}

/// A notification method: its name and the type of its params.
pub trait NotificationMethod {
    const NAME: &'static str;
    type Params: Serialize + DeserializeOwned + Send + 'static;
}

macro_rules! request {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $params:ty, $result:ty) => {
        $(#[$doc])*
        pub enum $ty {}
        impl RequestMethod for $ty {
            const NAME: &'static str = $name;
            type Params = $params;
            type Result = $result;
        }
    };
}

macro_rules! notification {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $params:ty) => {
        $(#[$doc])*
        pub enum $ty {}
        impl NotificationMethod for $ty {
            const NAME: &'static str = $name;
            type Params = $params;
        }
    };
}

request!(/// `initialize`: version and capabilities, both ways.
    Initialize, "initialize", InitializeParams, InitializeResult);
request!(/// `shutdown`: finish work in flight; only `exit` may follow.
    Shutdown, "shutdown", Option<serde_json::Value>, Option<serde_json::Value>);
notification!(/// `initialized`: the client has read the `initialize` result.
    Initialized, "initialized", InitializedParams);
notification!(/// `exit`: end the process (code 0 after `shutdown`, 1 otherwise).
    Exit, "exit", Option<serde_json::Value>);
notification!(/// `$/cancelRequest`.
    CancelRequest, "$/cancelRequest", CancelParams);
notification!(/// `$/progress`.
    Progress, "$/progress", ProgressParams);
notification!(/// `$/logMessage`.
    LogMessage, "$/logMessage", LogMessageParams);

request!(/// `env/tasks`.
    EnvTasks, "env/tasks", TasksParams, TasksResult);
request!(/// `env/reset`.
    EnvReset, "env/reset", ResetParams, ResetResult);
request!(/// `env/step`.
    EnvStep, "env/step", StepParams, StepResult);
request!(/// `env/admissibleActions`.
    EnvAdmissibleActions, "env/admissibleActions", AdmissibleActionsParams, AdmissibleActionsResult);
request!(/// `env/expertAction`.
    EnvExpertAction, "env/expertAction", ExpertActionParams, ExpertActionResult);

request!(/// `agent/plan`.
    AgentPlan, "agent/plan", PlanParams, PlanResult);
request!(/// `agent/act`.
    AgentAct, "agent/act", ActParams, ActResult);
request!(/// `agent/progress`.
    AgentProgress, "agent/progress", ProgressUpdateParams, ProgressUpdateResult);
request!(/// `agent/step`.
    AgentStep, "agent/step", AgentStepParams, AgentStepResult);
