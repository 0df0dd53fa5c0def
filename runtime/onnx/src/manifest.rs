//! The policy manifest (`stepwire.toml` or `stepwire.json`): parsing and validation.
//!
//! Every field is documented in `runtime/onnx/README.md`. Errors name the manifest file and the
//! field at fault.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use stepwire_sdk::protocol::Role;

use crate::error::{OnnxError, Result};
use crate::template::Template;

/// Default token limit of a role when `[generation] max_new_tokens` does not name it.
pub const DEFAULT_MAX_NEW_TOKENS: u32 = 32;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    model: RawModel,
    #[serde(default)]
    generation: RawGeneration,
    #[serde(default)]
    templates: BTreeMap<String, String>,
    #[serde(default)]
    low: RawLow,
    #[serde(default)]
    roles: BTreeMap<String, RawModelOverride>,
    #[serde(default)]
    progress: RawProgress,
    #[serde(default)]
    high: RawHigh,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHigh {
    planner: Option<String>,
}

/// Who picks subtasks when this policy plays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PlannerSource {
    /// The model's `high` role.
    #[default]
    Model,
    /// The whole task as the one subtask (`rules::WholeTaskPlanner`): a flat policy,
    /// `[high] planner = "whole-task"`.
    WholeTask,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProgress {
    tracker: Option<String>,
}

/// Who writes local progress when this policy plays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProgressSource {
    /// The model's `progress` role.
    #[default]
    Model,
    /// The SDK's deterministic tracker (`rules::ProgressTracker`), the one that labelled the
    /// demonstrations: `[progress] tracker = "rules"`.
    Rules,
    /// No local progress at all (`rules::NoProgress`), the ablation: `[progress] tracker = "none"`.
    None,
    /// Every action and its result so far (`rules::HistoryProgress`), which with a whole-task
    /// planner makes the full-history baseline: `[progress] tracker = "history"`.
    History,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    onnx: String,
    tokenizer: String,
    roles: Option<Vec<String>>,
    eos_token: String,
    bos_token: Option<String>,
    pad_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModelOverride {
    onnx: Option<String>,
    tokenizer: Option<String>,
    eos_token: Option<String>,
    bos_token: Option<String>,
    pad_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGeneration {
    max_new_tokens: Option<MaxTokens>,
    stop: Option<Vec<String>>,
    empty_field: Option<String>,
    list_separator: Option<String>,
    temperature: Option<f32>,
    top_p: Option<f32>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum MaxTokens {
    All(u32),
    PerRole(BTreeMap<String, u32>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLow {
    #[serde(default = "default_separator")]
    done_separator: String,
    #[serde(default = "default_done")]
    done_token: String,
    #[serde(default = "default_continue")]
    continue_token: String,
    /// Whether the low level was trained to choose among admissible actions (the runner asks the
    /// bridge for them) or to write actions freely (`false`: ScienceWorld's gold actions are often
    /// not in its own admissible list, so a policy cloned from them plays unconstrained).
    #[serde(default = "default_admissible")]
    admissible: bool,
}

impl Default for RawLow {
    fn default() -> Self {
        RawLow {
            done_separator: default_separator(),
            done_token: default_done(),
            continue_token: default_continue(),
            admissible: default_admissible(),
        }
    }
}

fn default_admissible() -> bool {
    true
}

fn default_separator() -> String {
    " ||| ".into()
}
fn default_done() -> String {
    "done".into()
}
fn default_continue() -> String {
    "continue".into()
}

/// The files and special tokens of one ONNX model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    pub onnx: PathBuf,
    pub tokenizer: PathBuf,
    pub eos_token: String,
    pub bos_token: Option<String>,
    pub pad_token: Option<String>,
}

/// What one role needs: its model, template and token limit.
#[derive(Debug, Clone)]
pub struct RoleSpec {
    /// Index into [`Manifest::models`].
    pub model: usize,
    pub template: Template,
    pub max_new_tokens: u32,
}

/// The low-level output format `<action><separator><done|continue>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowFormat {
    pub separator: String,
    pub done: String,
    pub cont: String,
    /// `[low] admissible`: the policy wants the admissible actions (constrained decoding).
    pub admissible: bool,
}

/// A validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest file.
    pub path: PathBuf,
    /// Distinct models (one unless `[roles.<role>]` tables name other files).
    pub models: Vec<ModelFiles>,
    /// The roles served, with their settings.
    pub roles: BTreeMap<Role, RoleSpec>,
    pub stop: Vec<String>,
    pub empty_field: String,
    pub list_separator: String,
    pub low: LowFormat,
    pub progress: ProgressSource,
    pub planner: PlannerSource,
    /// The decoding the policy plays best with when a request names none (`[generation]
    /// temperature`, `top_p`); absent: greedy.
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
}

/// The placeholders a role's template may use.
pub fn role_fields(role: Role) -> &'static [&'static str] {
    match role {
        Role::High => &["task", "completed_subtasks", "last_progress", "observation"],
        Role::Low => &["subtask", "progress", "observation"],
        Role::Progress => &["subtask", "progress", "previous_progress", "action", "observation"],
    }
}

fn parse_role(s: &str) -> Option<Role> {
    Role::ALL.into_iter().find(|r| r.as_str() == s)
}

impl Manifest {
    /// Loads a manifest from a model directory (`stepwire.toml`, else `stepwire.json`) or a file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = if path.is_dir() {
            let toml = path.join("stepwire.toml");
            let json = path.join("stepwire.json");
            if toml.is_file() {
                toml
            } else if json.is_file() {
                json
            } else {
                return Err(OnnxError::manifest(
                    path,
                    "no stepwire.toml or stepwire.json in this directory; a policy directory \
                     needs a manifest (see runtime/onnx/README.md)",
                ));
            }
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file)
            .map_err(|e| OnnxError::manifest(&file, format!("cannot read the manifest: {e}")))?;
        Self::parse(&text, &file)
    }

    /// Parses manifest text; `file` locates relative paths and names the file in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Self> {
        let err = |m: String| OnnxError::manifest(file, m);
        let raw: RawManifest = if file.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(text).map_err(|e| err(format!("invalid manifest: {e}")))?
        } else {
            toml::from_str(text).map_err(|e| err(format!("invalid manifest: {e}")))?
        };
        let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();

        let progress = match raw.progress.tracker.as_deref() {
            None | Some("model") => ProgressSource::Model,
            Some("rules") => ProgressSource::Rules,
            Some("none") => ProgressSource::None,
            Some("history") => ProgressSource::History,
            Some(other) => {
                return Err(err(format!(
                    "progress.tracker: {other:?} is not one of `model`, `rules`, `none`, `history`"
                )));
            }
        };
        let planner = match raw.high.planner.as_deref() {
            None | Some("model") => PlannerSource::Model,
            Some("whole-task") => PlannerSource::WholeTask,
            Some(other) => {
                return Err(err(format!("high.planner: {other:?} is not `model` or `whole-task`")));
            }
        };
        let role_names =
            raw.model.roles.clone().unwrap_or_else(|| Role::ALL.iter().map(|r| r.as_str().to_string()).collect());
        if role_names.is_empty() {
            return Err(err("model.roles is empty; list at least one of high, low, progress".into()));
        }
        let mut roles_served = Vec::new();
        for name in &role_names {
            let role = parse_role(name)
                .ok_or_else(|| err(format!("model.roles: unknown role {name:?} (expected high, low or progress)")))?;
            if !roles_served.contains(&role) {
                roles_served.push(role);
            }
        }
        for key in raw.templates.keys() {
            if parse_role(key).is_none() {
                return Err(err(format!("templates.{key}: unknown role (expected high, low or progress)")));
            }
        }
        for key in raw.roles.keys() {
            let role = parse_role(key)
                .ok_or_else(|| err(format!("roles.{key}: unknown role (expected high, low or progress)")))?;
            if !roles_served.contains(&role) {
                return Err(err(format!("roles.{key}: the role is not listed in model.roles")));
            }
        }

        let base = ModelFiles {
            onnx: dir.join(&raw.model.onnx),
            tokenizer: dir.join(&raw.model.tokenizer),
            eos_token: raw.model.eos_token.clone(),
            bos_token: raw.model.bos_token.clone(),
            pad_token: raw.model.pad_token.clone(),
        };
        let max_tokens = |role: Role| -> Result<u32> {
            let n = match &raw.generation.max_new_tokens {
                None => DEFAULT_MAX_NEW_TOKENS,
                Some(MaxTokens::All(n)) => *n,
                Some(MaxTokens::PerRole(m)) => {
                    if let Some(k) = m.keys().find(|k| parse_role(k).is_none()) {
                        return Err(err(format!(
                            "generation.max_new_tokens.{k}: unknown role (expected high, low or \
                             progress)"
                        )));
                    }
                    m.get(role.as_str()).copied().unwrap_or(DEFAULT_MAX_NEW_TOKENS)
                }
            };
            if n == 0 {
                return Err(err(format!("generation.max_new_tokens: {} must be at least 1", role.as_str())));
            }
            Ok(n)
        };

        let mut models: Vec<ModelFiles> = Vec::new();
        let mut roles = BTreeMap::new();
        for role in roles_served {
            let key = role.as_str();
            let text = raw
                .templates
                .get(key)
                .ok_or_else(|| err(format!("templates.{key}: missing (the role is listed in model.roles)")))?;
            let template = Template::parse(text).map_err(|m| err(format!("templates.{key}: {m}")))?;
            let allowed = role_fields(role);
            if let Some(bad) = template.fields().find(|f| !allowed.contains(f)) {
                return Err(err(format!(
                    "templates.{key}: unknown placeholder {{{bad}}} (the {key} role fills {})",
                    allowed.join(", ")
                )));
            }
            let files = match raw.roles.get(key) {
                None => base.clone(),
                Some(o) => ModelFiles {
                    onnx: o.onnx.as_ref().map_or(base.onnx.clone(), |p| dir.join(p)),
                    tokenizer: o.tokenizer.as_ref().map_or(base.tokenizer.clone(), |p| dir.join(p)),
                    eos_token: o.eos_token.clone().unwrap_or_else(|| base.eos_token.clone()),
                    bos_token: o.bos_token.clone().or_else(|| base.bos_token.clone()),
                    pad_token: o.pad_token.clone().or_else(|| base.pad_token.clone()),
                },
            };
            let (field_onnx, field_tok) = if raw.roles.contains_key(key) {
                (format!("roles.{key}.onnx"), format!("roles.{key}.tokenizer"))
            } else {
                ("model.onnx".to_string(), "model.tokenizer".to_string())
            };
            if !files.onnx.is_file() {
                return Err(err(format!("{field_onnx}: model file {} not found", files.onnx.display())));
            }
            if !files.tokenizer.is_file() {
                return Err(err(format!("{field_tok}: tokenizer file {} not found", files.tokenizer.display())));
            }
            let model = match models.iter().position(|m| *m == files) {
                Some(i) => i,
                None => {
                    models.push(files);
                    models.len() - 1
                }
            };
            roles.insert(role, RoleSpec { model, template, max_new_tokens: max_tokens(role)? });
        }

        let low = LowFormat {
            separator: raw.low.done_separator,
            done: raw.low.done_token,
            cont: raw.low.continue_token,
            admissible: raw.low.admissible,
        };
        if low.separator.trim().is_empty() {
            return Err(err("low.done_separator: must contain a non-space character".into()));
        }
        if low.done.trim().is_empty() || low.cont.trim().is_empty() || low.done == low.cont {
            return Err(err("low.done_token / low.continue_token: must be two different non-empty words".into()));
        }
        if let Some(t) = raw.generation.temperature.filter(|t| !(t.is_finite() && *t >= 0.0)) {
            return Err(err(format!("generation.temperature: must be a number >= 0 (0 is greedy), not {t}")));
        }
        if let Some(p) = raw.generation.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            return Err(err(format!("generation.top_p: must be in (0, 1], not {p}")));
        }
        let stop = raw.generation.stop.unwrap_or_default();
        if stop.iter().any(|s| s.is_empty()) {
            return Err(err("generation.stop: stop strings must not be empty".into()));
        }
        Ok(Manifest {
            path: file.to_path_buf(),
            models,
            roles,
            stop,
            empty_field: raw.generation.empty_field.unwrap_or_else(|| "none".into()),
            list_separator: raw.generation.list_separator.unwrap_or_else(|| "; ".into()),
            low,
            progress,
            planner,
            temperature: raw.generation.temperature,
            top_p: raw.generation.top_p,
        })
    }
}
