//! `OnnxPolicy`: a model directory loaded once and shared (`Arc`), serving the three STEP-HRL
//! roles through the SDK's policy traits.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use stepwire_sdk::policy::{HighLevelPolicy, LowLevelPolicy, PolicyError, ProgressPolicy};
use stepwire_sdk::protocol::{
    ActParams, ActResult, AgentCapabilities, PlanParams, PlanResult, ProgressUpdateParams, ProgressUpdateResult, Role,
    RoleUsage, Sampling, Usage,
};
use stepwire_sdk::rules::HistoryProgress;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::decoder::{Decoder, SessionOptions};
use crate::device::Device;
use crate::engine::{BatchOptions, Engine, Job};
use crate::error::{OnnxError, Result};
use crate::limits::{context_window, Limits};
use crate::manifest::{role_fields, Manifest, ProgressSource};
use crate::prompt::{self, Fields};
use crate::sampling::Sampler;
use crate::sequence::{Finish, Generation, Sequence, SequenceParams};
use crate::tokenize::TextTokenizer;
use crate::trie::ActionTrie;

/// How to load a policy.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    pub device: Device,
    /// ONNX Runtime intra-op threads per model; 0 = ONNX Runtime's default.
    pub intra_threads: usize,
    /// Let idle intra-op threads spin-wait (off by default: spinning helps only on cores that
    /// nothing else uses).
    pub spinning: bool,
    /// Compute each template's fixed prefix once and reuse its cache.
    pub prefix_cache: bool,
    /// Load the graph exactly as exported, without load-time rewrites.
    pub keep_graph: bool,
    pub batch: BatchOptions,
    /// What one request may cost (prompt and generation tokens).
    pub limits: Limits,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            device: Device::Cpu,
            intra_threads: 0,
            spinning: false,
            prefix_cache: true,
            keep_graph: false,
            batch: BatchOptions::default(),
            limits: Limits::default(),
        }
    }
}

/// One generation request at the text level.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// The role whose model, prefix cache and limits apply.
    pub role: Role,
    /// The full prompt (normally a rendered template).
    pub prompt: String,
    /// Overrides the role's `max_new_tokens` (and `sampling.maxTokens`).
    pub max_new_tokens: Option<u32>,
    /// Overrides the manifest's stop strings.
    pub stop: Option<Vec<String>>,
    pub sampling: Option<Sampling>,
    /// Constrain the output to `<action><separator><done|continue>` over these actions.
    pub admissible_actions: Option<Vec<String>>,
}

impl GenerateRequest {
    pub fn new(role: Role, prompt: impl Into<String>) -> Self {
        GenerateRequest {
            role,
            prompt: prompt.into(),
            max_new_tokens: None,
            stop: None,
            sampling: None,
            admissible_actions: None,
        }
    }
}

struct RoleRuntime {
    engine: usize,
    prefix_slot: Option<usize>,
    cached_prefix_tokens: usize,
    /// The template prefix's text and ids, when a prompt that starts with it can be tokenised
    /// as those ids plus the rest alone (checked at load).
    split: Option<(String, Vec<u32>)>,
    /// Longest prompt served, in tokens.
    prompt_limit: usize,
}

struct Inner {
    manifest: Manifest,
    name: String,
    engines: Vec<Engine>,
    roles: BTreeMap<Role, RoleRuntime>,
    limits: Limits,
}

/// ONNX policies for the roles a manifest lists. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct OnnxPolicy {
    inner: Arc<Inner>,
}

/// A job ready for a worker.
struct Prepared {
    engine: usize,
    prompt: Vec<u32>,
    prefix_slot: Option<usize>,
    seq: Sequence,
}

impl OnnxPolicy {
    /// Loads the policy in `path` (a directory holding `stepwire.toml`/`stepwire.json`, or the
    /// manifest file itself).
    pub fn load(path: impl AsRef<Path>, opts: LoadOptions) -> Result<Arc<Self>> {
        let mut manifest = Manifest::load(path.as_ref())?;
        for (role, spec) in manifest.roles.iter_mut() {
            if spec.max_new_tokens as usize > opts.limits.max_new_tokens {
                warn!(
                    role = role.as_str(),
                    manifest = spec.max_new_tokens,
                    limit = opts.limits.max_new_tokens,
                    "the manifest's max_new_tokens is over the generation limit; capped"
                );
                spec.max_new_tokens = opts.limits.max_new_tokens as u32;
            }
        }
        let name = manifest
            .path
            .parent()
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "onnx".into());
        let session = SessionOptions {
            device: opts.device,
            intra_threads: opts.intra_threads,
            spinning: opts.spinning,
            keep_graph: opts.keep_graph,
        };
        let mut engines = Vec::new();
        let mut roles = BTreeMap::new();
        for (mi, files) in manifest.models.iter().enumerate() {
            let context = context_window(&files.onnx);
            let tok = Arc::new(TextTokenizer::load(files)?);
            let decoder = Decoder::load(&files.onnx, session)?;
            if let Some(v) = decoder.spec.vocab {
                if v < tok.vocab_size() {
                    return Err(OnnxError::model(
                        &files.onnx,
                        format!(
                            "the model's vocabulary ({v}) is smaller than the tokenizer's ({}); \
                             {} does not belong to this model",
                            tok.vocab_size(),
                            files.tokenizer.display()
                        ),
                    ));
                }
            }
            let mut prefixes = Vec::new();
            for (role, spec) in manifest.roles.iter().filter(|(_, s)| s.model == mi) {
                let ids = if opts.prefix_cache { prefix_ids(&tok, *role, spec, &manifest)? } else { None };
                let cached = ids.as_ref().map_or(0, Vec::len);
                let slot = ids.is_some().then_some(prefixes.len());
                let split = match &ids {
                    Some(ids) if split_tokenization_agrees(&tok, *role, spec, &manifest, ids)? => {
                        Some((spec.template.prefix().to_string(), ids.clone()))
                    }
                    _ => None,
                };
                prefixes.push(ids);
                roles.insert(
                    *role,
                    RoleRuntime {
                        engine: engines.len(),
                        prefix_slot: slot,
                        cached_prefix_tokens: cached,
                        split,
                        prompt_limit: opts.limits.prompt_limit(context, spec.max_new_tokens as usize),
                    },
                );
            }
            engines.push(Engine::start(decoder, tok, prefixes, opts.batch)?);
        }
        info!(policy = %name, roles = ?roles.keys().collect::<Vec<_>>(), "ONNX policy loaded");
        Ok(Arc::new(OnnxPolicy { inner: Arc::new(Inner { manifest, name, engines, roles, limits: opts.limits }) }))
    }

    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// The model directory's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn roles(&self) -> Vec<Role> {
        self.inner.roles.keys().copied().collect()
    }

    /// Tokens of `role`'s template prefix served from the cache (0 when not cached).
    pub fn cached_prefix_tokens(&self, role: Role) -> usize {
        self.inner.roles.get(&role).map_or(0, |r| r.cached_prefix_tokens)
    }

    /// Whether prompts from `role`'s template are tokenised after the cached prefix only (the
    /// tokenizer passed the load-time check).
    pub fn tokenises_after_prefix(&self, role: Role) -> bool {
        self.inner.roles.get(&role).is_some_and(|r| r.split.is_some())
    }

    /// Counters of the worker serving `role`.
    pub fn stats(&self, role: Role) -> Option<&crate::engine::EngineStats> {
        let r = self.inner.roles.get(&role)?;
        Some(&self.inner.engines[r.engine].stats)
    }

    /// What the agent server announces for this policy.
    pub fn capabilities(&self) -> AgentCapabilities {
        AgentCapabilities {
            roles: self.roles(),
            constrained_decoding: self.inner.roles.contains_key(&Role::Low) && self.inner.manifest.low.admissible,
            policy: Some(self.inner.name.clone()),
        }
    }

    /// `role`'s template filled with `fields`.
    pub fn render(&self, role: Role, fields: &Fields<'_>) -> Result<String> {
        let spec = self.inner.manifest.roles.get(&role).ok_or_else(|| not_served(role))?;
        Ok(spec.template.render(fields, &self.inner.manifest.empty_field))
    }

    /// The token ids `role`'s model is given for `prompt` (BOS included).
    pub fn prompt_ids(&self, role: Role, prompt: &str) -> Result<Vec<u32>> {
        let rt = self.inner.roles.get(&role).ok_or_else(|| not_served(role))?;
        self.inner.prompt_ids(rt, prompt)
    }

    /// The tokenizer of `role`'s model.
    pub fn tokenizer(&self, role: Role) -> Result<&TextTokenizer> {
        let r = self.inner.roles.get(&role).ok_or_else(|| not_served(role))?;
        Ok(&self.inner.engines[r.engine].tokenizer)
    }

    /// Generates on the calling thread (blocks until done).
    pub fn generate_blocking(&self, req: &GenerateRequest, cancel: &CancellationToken) -> Result<Generation> {
        let p = self.inner.prepare(req)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.inner.submit(
            p,
            cancel.clone(),
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().map_err(|_| OnnxError::WorkerGone)?
    }

    /// Generates without blocking the async runtime: tokenisation runs on a blocking thread,
    /// decoding on the model's worker. Dropping the future cancels the request.
    pub async fn generate(&self, req: GenerateRequest, cancel: &CancellationToken) -> Result<Generation> {
        let inner = self.inner.clone();
        let p = tokio::task::spawn_blocking(move || inner.prepare(&req))
            .await
            .map_err(|e| OnnxError::Inference(format!("tokenisation task failed: {e}")))??;
        let job_cancel = cancel.child_token();
        let _cancel_on_drop = job_cancel.clone().drop_guard();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner.submit(
            p,
            job_cancel,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.await.map_err(|_| OnnxError::WorkerGone)?
    }

    async fn run_role(
        &self,
        role: Role,
        fields: Fields<'_>,
        sampling: Option<&Sampling>,
        actions: Option<&Vec<String>>,
        cancel: &CancellationToken,
    ) -> Result<(Generation, Usage)> {
        let prompt = self.render(role, &fields)?;
        let req = GenerateRequest {
            sampling: sampling.cloned(),
            admissible_actions: actions.cloned(),
            ..GenerateRequest::new(role, prompt)
        };
        let g = self.generate(req, cancel).await?;
        let mut usage = Usage::default();
        let ru = RoleUsage {
            prompt_tokens: g.prompt_tokens as u64,
            cached_tokens: g.cached_tokens as u64,
            completion_tokens: g.token_ids.len() as u64,
        };
        match role {
            Role::High => usage.high = ru,
            Role::Low => usage.low = ru,
            Role::Progress => usage.progress = ru,
        }
        Ok((g, usage))
    }
}

impl Inner {
    fn prepare(&self, req: &GenerateRequest) -> Result<Prepared> {
        let m = &self.manifest;
        let spec = m.roles.get(&req.role).ok_or_else(|| not_served(req.role))?;
        let rt = &self.roles[&req.role];
        let tok = &self.engines[rt.engine].tokenizer;
        let s = req.sampling.clone().unwrap_or_default();
        let requested = req.max_new_tokens.or(s.max_tokens);
        if let Some(n) = requested {
            self.limits.check_new_tokens(n as usize)?;
        }
        let max_new = requested.unwrap_or(spec.max_new_tokens).max(1);
        // Tokenising costs time linear in the text (bounded by the message size); the model's
        // attention does not, so the limit is on tokens, checked before any model runs.
        let prompt = self.prompt_ids(rt, &req.prompt)?;
        Limits::check_prompt(prompt.len(), rt.prompt_limit, req.role.as_str())?;
        let constraint = match &req.admissible_actions {
            Some(actions) => {
                let lead = if req.prompt.ends_with(char::is_whitespace) { "" } else { " " };
                let trie = ActionTrie::build(tok, actions, &m.low, lead)?;
                self.limits.check_action(trie.longest, &trie.actions[trie.longest_action])?;
                Some(Arc::new(trie))
            }
            None => None,
        };
        let seq = Sequence::new(SequenceParams {
            max_new_tokens: max_new as usize,
            stop: req.stop.clone().unwrap_or_else(|| m.stop.clone()),
            // The request's sampling, else the policy's own default (the manifest's).
            sampler: Sampler::new(s.temperature.or(m.temperature), s.top_p.or(m.top_p), s.seed),
            constraint,
        });
        Ok(Prepared { engine: rt.engine, prompt, prefix_slot: rt.prefix_slot, seq })
    }

    /// Tokenises `prompt`. A prompt made from the role's template only needs its part after the
    /// prefix tokenised: the prefix's ids are known, and a request's own text is usually the
    /// smaller part (tokenising runs on the caller's thread before every generation).
    fn prompt_ids(&self, rt: &RoleRuntime, prompt: &str) -> Result<Vec<u32>> {
        let tok = &self.engines[rt.engine].tokenizer;
        if let Some((text, ids)) = &rt.split {
            // The load-time check covers a rest that starts with a visible character, which is
            // what a rendered template has (field values are trimmed).
            if let Some(rest) =
                prompt.strip_prefix(text.as_str()).filter(|r| r.starts_with(|c: char| !c.is_whitespace()))
            {
                let mut out = ids.clone();
                out.extend(tok.encode_plain(rest)?);
                return Ok(out);
            }
        }
        tok.encode_prompt(prompt)
    }

    fn submit(&self, p: Prepared, cancel: CancellationToken, reply: crate::engine::Reply) {
        self.engines[p.engine].submit(Job { prompt: p.prompt, prefix_slot: p.prefix_slot, seq: p.seq, cancel, reply });
    }
}

fn not_served(role: Role) -> OnnxError {
    OnnxError::InvalidInput(format!("this policy does not serve the {} role", role.as_str()))
}

/// The template prefix's token ids, if they are a prefix of a rendered prompt's ids.
fn prefix_ids(
    tok: &TextTokenizer,
    role: Role,
    spec: &crate::manifest::RoleSpec,
    m: &Manifest,
) -> Result<Option<Vec<u32>>> {
    let prefix = spec.template.prefix();
    if prefix.is_empty() {
        return Ok(None);
    }
    let ids = tok.encode_prompt(prefix)?;
    let mut fields = Fields::new();
    for f in role_fields(role) {
        fields.insert(f, "look around the room 1".to_string());
    }
    let full = tok.encode_prompt(&spec.template.render(&fields, &m.empty_field))?;
    if full.len() > ids.len() && full.starts_with(&ids) {
        Ok(Some(ids))
    } else {
        warn!(
            role = role.as_str(),
            "the {} template's prefix tokenizes differently alone than inside a prompt (end the \
             prefix with a newline); prefix caching is off for this role",
            role.as_str()
        );
        Ok(None)
    }
}

/// Whether prompts rendered from the template tokenise as the prefix ids followed by the rest
/// tokenised alone, for field values of several shapes. A tokenizer that treats the start of a
/// text specially (a SentencePiece `▁` prepended, a normaliser that looks around) fails this
/// and keeps tokenising whole prompts.
fn split_tokenization_agrees(
    tok: &TextTokenizer,
    role: Role,
    spec: &crate::manifest::RoleSpec,
    m: &Manifest,
    prefix_ids: &[u32],
) -> Result<bool> {
    const SAMPLES: &[&str] =
        &["look around the room 1", "2 apples", "[x] done.", "\"quoted\" text", "Ünïcödé café – ok", "-5", "x"];
    let prefix = spec.template.prefix();
    for sample in SAMPLES {
        let mut fields = Fields::new();
        for f in role_fields(role) {
            fields.insert(f, sample.to_string());
        }
        let full = spec.template.render(&fields, &m.empty_field);
        let mut split = prefix_ids.to_vec();
        split.extend(tok.encode_plain(&full[prefix.len()..])?);
        if split != tok.encode_prompt(&full)? {
            debug!(
                role = role.as_str(),
                sample, "the prompt's rest does not tokenise alone; whole prompts are tokenised"
            );
            return Ok(false);
        }
    }
    Ok(true)
}

#[async_trait]
impl HighLevelPolicy for OnnxPolicy {
    async fn plan(&self, params: &PlanParams, cancel: &CancellationToken) -> Result<PlanResult, PolicyError> {
        // A long episode's list of completed subtasks can outgrow the context window: the
        // oldest are left out, one at a time, until the prompt fits (the list is the plan's
        // memory of what is done; the latest entries matter most).
        let mut params = std::borrow::Cow::Borrowed(params);
        loop {
            let fields = prompt::plan_fields(&self.inner.manifest, &params);
            match self.run_role(Role::High, fields, params.sampling.as_ref(), None, cancel).await {
                Err(OnnxError::LimitExceeded(_)) if !params.completed_subtasks.is_empty() => {
                    let left_out = params.to_mut().completed_subtasks.remove(0);
                    tracing::debug!(%left_out, "plan prompt over the window: oldest completed subtask left out");
                }
                result => {
                    let (g, usage) = result?;
                    let subtask = g.text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").to_string();
                    return Ok(PlanResult { subtask, usage });
                }
            }
        }
    }
}

#[async_trait]
impl LowLevelPolicy for OnnxPolicy {
    async fn act(&self, params: &ActParams, cancel: &CancellationToken) -> Result<ActResult, PolicyError> {
        let actions = params.admissible_actions.as_ref();
        // A full-history prompt that outgrows the context window keeps its newest entries: the
        // oldest action and its result are left out, one at a time, until it fits.
        let windowed = self.inner.manifest.progress == ProgressSource::History;
        let mut params = std::borrow::Cow::Borrowed(params);
        let (g, usage) = loop {
            let fields = prompt::act_fields(&self.inner.manifest, &params);
            match self.run_role(Role::Low, fields, params.sampling.as_ref(), actions, cancel).await {
                Err(OnnxError::LimitExceeded(m)) if windowed => match HistoryProgress::drop_oldest(&params.progress) {
                    Some(rest) => {
                        let rest = rest.to_string();
                        params.to_mut().progress = rest;
                        debug!("act prompt over the window: oldest history entry left out");
                    }
                    // One entry left and still over: the limit error stands.
                    None => return Err(OnnxError::LimitExceeded(m).into()),
                },
                result => break result?,
            }
        };
        let low = &self.inner.manifest.low;
        let (action, subtask_done) = match (g.finish, actions) {
            (Finish::Action { index, done }, Some(_)) => {
                // The trie indexes its deduplicated list; map back by value.
                let list: Vec<&String> = dedup(actions.into_iter().flatten());
                (list.get(index).map(|s| s.to_string()).unwrap_or_default(), done)
            }
            _ => prompt::parse_low(&g.text, &low.separator, &low.done),
        };
        Ok(ActResult { action, subtask_done, usage })
    }
}

#[async_trait]
impl ProgressPolicy for OnnxPolicy {
    async fn update(
        &self,
        params: &ProgressUpdateParams,
        cancel: &CancellationToken,
    ) -> Result<ProgressUpdateResult, PolicyError> {
        let fields = prompt::progress_fields(&self.inner.manifest, params);
        let (g, usage) = self.run_role(Role::Progress, fields, params.sampling.as_ref(), None, cancel).await?;
        let progress = g.text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").to_string();
        Ok(ProgressUpdateResult { progress, usage })
    }
}

/// The actions as the trie lists them: non-blank, first occurrence of each.
fn dedup<'a>(actions: impl Iterator<Item = &'a String>) -> Vec<&'a String> {
    let mut seen = std::collections::HashSet::new();
    actions.filter(|a| !a.trim().is_empty() && seen.insert(a.as_str())).collect()
}
