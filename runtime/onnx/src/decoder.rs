//! The ONNX decoder in the Optimum `text-generation-with-past` layout: loading, shape discovery
//! and one forward pass.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{Session, SessionInputValue, SessionOutputs};
use ort::value::{DynValue, Tensor, TensorRef, ValueType};
use tracing::{debug, warn};

use crate::device::{self, Device};
use crate::error::{OnnxError, Result};
use crate::kv::{Kv, Padding};
use crate::weights::SharedWeights;
use crate::{graph, ortlib};

/// Shapes and names discovered from the model's input metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    pub num_layers: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Known vocabulary size (from the `logits` output), if the export fixes it.
    pub vocab: Option<usize>,
    /// Gemma exports have no `position_ids` input.
    pub has_position_ids: bool,
    /// Which exporter's graph this is.
    pub layout: Layout,
}

/// The decoder layouts stepwire loads. Both take `input_ids`, `attention_mask` and
/// `past_key_values.N.{key,value}` and return `logits` and `present.N.{key,value}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Hugging Face Optimum's `text-generation-with-past` export (`position_ids` given).
    Optimum,
    /// onnxruntime-genai's model builder: `GroupQueryAttention` computes positions from the mask
    /// (so rows are right-padded) and leaves the head size symbolic (it is in
    /// `genai_config.json`). Its cache is one buffer bound as both past and present, which the
    /// operator writes in place (its shared-buffer mode), instead of a longer copy every pass.
    GenaiBuilder,
}

impl Layout {
    /// How this layout's caches are arranged.
    pub fn padding(self) -> Padding {
        match self {
            Layout::Optimum => Padding::Left,
            Layout::GenaiBuilder => Padding::Right,
        }
    }
}

/// Session options.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionOptions {
    pub device: Device,
    /// ONNX Runtime intra-op threads; 0 = ONNX Runtime's default.
    pub intra_threads: usize,
    /// Let idle intra-op threads spin (lower latency on dedicated cores, much worse on busy ones).
    pub spinning: bool,
    /// Load the graph exactly as exported, without the load-time rewrites of [`graph`](crate::graph)
    /// (to compare against, or to rule them out when a model misbehaves).
    pub keep_graph: bool,
}

/// A loaded decoder session.
pub struct Decoder {
    // Declared before `model`: the session must go before the weights it was given.
    session: Session,
    model: Arc<LoadedModel>,
    pub spec: ModelSpec,
    pub path: PathBuf,
    pub device: Device,
    /// The options it was loaded with.
    pub options: SessionOptions,
    /// Whether `logits` was rewritten to cover the last position only.
    pub last_position_logits: bool,
    /// What folding the shape arithmetic did, when the rewritten graph is the one loaded.
    pub shape_fold: Option<graph::shape_fold::Report>,
    past_names: Vec<String>,
    present_names: Vec<String>,
}

/// What one forward pass returns.
pub struct Forward {
    /// `logits[:, -1, :]`, row-major `[batch, vocab]`.
    pub last_logits: Vec<f32>,
    pub vocab: usize,
    /// The `present.*` tensors: the cache for the next pass.
    pub kv: Kv,
}

impl Decoder {
    /// Loads `path` and checks its inputs and outputs.
    ///
    /// The graph is first rewritten at load (see [`graph`](crate::graph)): `logits` for the last
    /// position only, and the export's shape arithmetic folded. A rewrite ONNX Runtime refuses
    /// is dropped and the model loaded as it is. On the CPU, weights in external data are
    /// memory-mapped and shared with every later session of the model (see [`weights`](crate::weights)).
    pub fn load(path: &Path, opts: SessionOptions) -> Result<Self> {
        // A missing or unloadable library is reported as itself, not as a refused rewrite.
        ortlib::environment()?;
        let model_err = |m: String| OnnxError::model(path, m);
        crate::memory::check_fits(path, None)?;
        let bytes = std::fs::read(path).map_err(|e| model_err(format!("cannot read: {e}")))?;
        let rewritten = if opts.keep_graph {
            None
        } else {
            graph::rewrite(&bytes).map_err(|why| debug!(path = %path.display(), "graph not rewritten: {why}")).ok()
        };
        if let Some(r) = rewritten {
            let mut model = LoadedModel::new(path, r.bytes, r.last_position_logits, r.shape_fold, opts);
            match commit(path, &mut model, opts) {
                Ok(session) => return Decoder::from_session(path, Arc::new(model), session, opts),
                Err(e) => {
                    warn!(path = %path.display(), "the rewritten graph did not load ({e}); using the model as it is")
                }
            }
        }
        let mut model = LoadedModel::new(path, bytes, false, None, opts);
        let session = commit(path, &mut model, opts)?;
        Decoder::from_session(path, Arc::new(model), session, opts)
    }

    /// A second session of the same model, for a thread that runs passes at the same time as
    /// this one: built from this one's (rewritten) model bytes, without reading or rewriting the
    /// file again, and sharing its weights and their pre-packed forms when this one does
    /// ([`Decoder::shared_weights`]).
    pub fn load_again(&self) -> Result<Decoder> {
        let session = build_session(&self.path, &self.model, self.options)?;
        Decoder::from_session(&self.path, self.model.clone(), session, self.options)
    }

    /// The weights this session shares with the model's other sessions: `(initializers, bytes)`,
    /// or `None` when it holds a copy of its own (a model without external data, a GPU, or
    /// ONNX Runtime refusing to share).
    pub fn shared_weights(&self) -> Option<(usize, u64)> {
        self.model.weights.as_ref().map(|w| (w.count(), w.bytes))
    }

    /// Whether `other` was built from the same loaded model bytes as this session.
    pub fn same_model(&self, other: &Decoder) -> bool {
        Arc::ptr_eq(&self.model, &other.model)
    }

    fn from_session(
        path: &Path,
        model: Arc<LoadedModel>,
        session: (Session, Device),
        opts: SessionOptions,
    ) -> Result<Self> {
        let (session, device) = session;
        let spec = discover(&session, path).map_err(|m| OnnxError::model(path, m))?;
        let (last_position_logits, shape_fold) = (model.last_position_logits, model.shape_fold);
        if let Some(report) = shape_fold {
            debug!(path = %path.display(), ?report, "shape arithmetic folded");
        }
        debug!(path = %path.display(), ?spec, last_position_logits, shared = ?model.weights, "decoder loaded");
        let past_names = (0..spec.num_layers)
            .flat_map(|i| [format!("past_key_values.{i}.key"), format!("past_key_values.{i}.value")])
            .collect();
        let present_names =
            (0..spec.num_layers).flat_map(|i| [format!("present.{i}.key"), format!("present.{i}.value")]).collect();
        Ok(Decoder {
            session,
            model,
            spec,
            path: path.to_path_buf(),
            device,
            options: opts,
            last_position_logits,
            shape_fold,
            past_names,
            present_names,
        })
    }

    /// An empty cache for a first pass.
    pub fn empty_kv(&self, batch: usize) -> Result<Kv> {
        Kv::zeros(&self.spec, self.spec.layout.padding(), batch, 0)
    }

    /// A cache of its own that continues from `cached` (a cached prefix, batch 1), which stays
    /// as it is.
    pub fn continue_from(&self, cached: &Kv) -> Result<Kv> {
        Kv::gather(&self.spec, self.spec.layout.padding(), &[(cached, 0, cached.len)], cached.len)
    }

    /// Runs `ids` (`[batch, seq]`, row-major) on top of `past`, which becomes the returned cache.
    ///
    /// `mask` is `[batch, past.len + seq]` and `positions` `[batch, seq]`. Left-padded rows have
    /// their zeros first; right-padded ones (the builder layout) have their `valid + seq` ones
    /// first, and the operator finds each row's positions from that count.
    pub fn forward(&mut self, ids: &[i64], mask: &[i64], positions: &[i64], past: Kv) -> Result<Forward> {
        let batch = past.batch;
        let seq = ids.len() / batch.max(1);
        let total = past.len + seq;
        debug_assert_eq!(ids.len(), batch * seq);
        debug_assert_eq!(mask.len(), batch * total);
        match past.padding {
            Padding::Left => {
                let ids_t = TensorRef::from_array_view(([batch, seq], ids)).map_err(inference)?;
                let mask_t = TensorRef::from_array_view(([batch, total], mask)).map_err(inference)?;
                let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = Vec::with_capacity(3 + past.tensors.len());
                inputs.push(("input_ids".into(), ids_t.into()));
                inputs.push(("attention_mask".into(), mask_t.into()));
                if self.spec.has_position_ids {
                    let pos_t = TensorRef::from_array_view(([batch, seq], positions)).map_err(inference)?;
                    inputs.push(("position_ids".into(), pos_t.into()));
                }
                for (name, t) in self.past_names.iter().zip(past.tensors) {
                    inputs.push((Cow::Borrowed(name.as_str()), t.into()));
                }
                let mut out = self.session.run(inputs).map_err(inference)?;
                let (last_logits, vocab) =
                    last_logits(&mut out, batch, if self.last_position_logits { 1 } else { seq })?;
                let mut tensors: Vec<DynValue> = Vec::with_capacity(self.present_names.len());
                for name in &self.present_names {
                    let t = out
                        .remove(name.as_str())
                        .ok_or_else(|| OnnxError::Inference(format!("the model returned no `{name}`")))?;
                    tensors.push(t);
                }
                let kv = Kv { tensors, batch, len: total, cap: total, padding: Padding::Left };
                Ok(Forward { last_logits, vocab, kv })
            }
            Padding::Right => {
                // The operator writes this pass's keys and values after each row's valid ones, in
                // the buffer itself; it must have room for the longest row.
                let mut kv = if total > past.cap { past.grown(&self.spec, total + crate::kv::HEADROOM)? } else { past };
                let mut binding = self.session.create_binding().map_err(inference)?;
                // Owned copies: binding a borrowed view makes ort clone it, which deadlocks in
                // ort 2.0.0-rc.15 (its copy runs through a binding of its own).
                let owned =
                    |shape: [usize; 2], data: &[i64]| Tensor::from_array((shape, data.to_vec())).map_err(inference);
                binding.bind_input("input_ids", &owned([batch, seq], ids)?).map_err(inference)?;
                binding.bind_input("attention_mask", &owned([batch, total], mask)?).map_err(inference)?;
                if self.spec.has_position_ids {
                    binding.bind_input("position_ids", &owned([batch, seq], positions)?).map_err(inference)?;
                }
                for ((past_name, present_name), t) in
                    self.past_names.iter().zip(&self.present_names).zip(&mut kv.tensors)
                {
                    binding.bind_input(past_name.as_str(), t).map_err(inference)?;
                    binding.bind_output(present_name.as_str(), t).map_err(inference)?;
                }
                let cpu = MemoryInfo::new(AllocationDevice::CPU, 0, AllocatorType::Device, MemoryType::Default)
                    .map_err(inference)?;
                binding.bind_output_to_device("logits", &cpu).map_err(inference)?;
                let mut out = self.session.run_binding(&binding).map_err(inference)?;
                let (last_logits, vocab) =
                    last_logits(&mut out, batch, if self.last_position_logits { 1 } else { seq })?;
                drop(out);
                drop(binding);
                kv.len = total;
                Ok(Forward { last_logits, vocab, kv })
            }
        }
    }
}

fn inference(e: ort::Error) -> OnnxError {
    OnnxError::Inference(e.to_string())
}

/// `logits[:, -1, :]` of a pass whose `logits` has `rows` positions a batch row.
fn last_logits(out: &mut SessionOutputs<'_>, batch: usize, rows: usize) -> Result<(Vec<f32>, usize)> {
    let logits = out.remove("logits").ok_or_else(|| OnnxError::Inference("the model returned no `logits`".into()))?;
    let (shape, data) = logits.try_extract_tensor::<f32>().map_err(inference)?;
    if shape.len() != 3 || shape[0] as usize != batch || shape[1] as usize != rows {
        return Err(OnnxError::Inference(format!("unexpected logits shape {shape:?}")));
    }
    let vocab = shape[2] as usize;
    let mut last = Vec::with_capacity(batch * vocab);
    for b in 0..batch {
        let start = (b * rows + rows - 1) * vocab;
        last.extend_from_slice(&data[start..start + vocab]);
    }
    Ok((last, vocab))
}

/// The model bytes a decoder's sessions are built from, and the weights they share.
struct LoadedModel {
    bytes: Vec<u8>,
    last_position_logits: bool,
    shape_fold: Option<graph::shape_fold::Report>,
    weights: Option<SharedWeights>,
}

impl LoadedModel {
    fn new(
        path: &Path,
        bytes: Vec<u8>,
        last_position_logits: bool,
        shape_fold: Option<graph::shape_fold::Report>,
        opts: SessionOptions,
    ) -> Self {
        // A GPU session would copy CPU-side initializers to the device anyway.
        let weights = match opts.device {
            Device::Cpu => SharedWeights::map(path, &bytes)
                .map_err(|e| warn!(path = %path.display(), "weights not shared between sessions: {e}"))
                .ok()
                .flatten(),
            Device::Cuda { .. } => None,
        };
        LoadedModel { bytes, last_position_logits, shape_fold, weights }
    }
}

/// The first session of a model: with shared weights, or without them when ONNX Runtime refuses
/// (then later sessions hold copies of their own too).
fn commit(path: &Path, model: &mut LoadedModel, opts: SessionOptions) -> Result<(Session, Device)> {
    match build_session(path, model, opts) {
        Err(e) if model.weights.is_some() => {
            warn!(path = %path.display(), "the model did not load with shared weights ({e}); each session gets its own");
            model.weights = None;
            build_session(path, model, opts)
        }
        result => result,
    }
}

/// A session for `model`, on the requested device (or CPU when it falls back).
fn build_session(path: &Path, model: &LoadedModel, opts: SessionOptions) -> Result<(Session, Device)> {
    let env = ortlib::environment()?;
    let model_err = |m: String| OnnxError::model(path, m);
    let mut builder = Session::builder(&env)
        .and_then(|b| b.with_optimization_level(GraphOptimizationLevel::Level3).map_err(Into::into))
        .map_err(|e| model_err(format!("cannot create a session: {e}")))?;
    if opts.intra_threads > 0 {
        builder = builder
            .with_intra_threads(opts.intra_threads)
            .map_err(|e| model_err(format!("cannot set intra-op threads: {e}")))?;
    }
    builder = builder
        .with_intra_op_spinning(opts.spinning)
        .map_err(|e| model_err(format!("cannot set intra-op spinning: {e}")))?;
    // Prompts differ in length on every call; with memory patterns on, ONNX Runtime plans and
    // keeps a buffer layout per input shape, and a long-running server's memory climbs in steps
    // (RELIABILITY.md, the model soak).
    builder =
        builder.with_memory_pattern(false).map_err(|e| model_err(format!("cannot turn off memory patterns: {e}")))?;
    // The model is committed from memory, so ONNX Runtime needs to be told where its external
    // data (`model.onnx_data`, which Optimum writes for models over 2 GB) lives.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        builder = builder
            .with_config_entry("session.model_external_initializers_file_folder_path", dir.to_string_lossy())
            .map_err(|e| model_err(format!("cannot set the external data folder: {e}")))?;
    }
    if let Some(prefix) = std::env::var_os("STEPWIRE_ORT_PROFILE") {
        builder = builder.with_profiling(prefix).map_err(|e| model_err(format!("cannot turn on profiling: {e}")))?;
    }
    if let Some(weights) = &model.weights {
        builder = weights.apply(builder).map_err(model_err)?;
    }
    let (mut builder, device) = device::apply(builder, opts.device);
    let mut commit = move || {
        builder.commit_from_memory(&model.bytes).map_err(|e| {
            model_err(format!("not a loadable ONNX model ({e}); re-export it with Optimum (text-generation-with-past)"))
        })
    };
    let session = match &model.weights {
        Some(weights) => weights.while_packing(commit),
        None => commit(),
    }?;
    Ok((session, device))
}

/// Reads layers, key/value heads and head size from the inputs, and checks the outputs.
fn discover(session: &Session, path: &Path) -> std::result::Result<ModelSpec, String> {
    let inputs = session.inputs();
    let has = |n: &str| inputs.iter().any(|i| i.name() == n);
    for needed in ["input_ids", "attention_mask"] {
        if !has(needed) {
            return Err(format!(
                "the model has no `{needed}` input; stepwire needs a decoder exported by Optimum \
                 for text-generation-with-past"
            ));
        }
    }
    let mut num_layers = 0;
    while has(&format!("past_key_values.{num_layers}.key")) {
        if !has(&format!("past_key_values.{num_layers}.value")) {
            return Err(format!("input past_key_values.{num_layers}.value is missing"));
        }
        num_layers += 1;
    }
    if num_layers == 0 {
        return Err("the model has no `past_key_values.0.key` input: export it with the KV \
                    cache (Optimum task text-generation-with-past)"
            .into());
    }
    let past0 = inputs.iter().find(|i| i.name() == "past_key_values.0.key").ok_or("past_key_values.0.key vanished")?;
    let shape = match past0.dtype() {
        ValueType::Tensor { shape, .. } => shape.clone(),
        other => return Err(format!("past_key_values.0.key is not a tensor ({other:?})")),
    };
    // onnxruntime-genai's builder names the head size `kv_cache_dim` and writes it into its config.
    let genai_head = genai_head_size(path);
    let layout = if genai_head.is_some() { Layout::GenaiBuilder } else { Layout::Optimum };
    let head_dim = if shape.len() == 4 && shape[3] > 0 { Some(shape[3] as usize) } else { genai_head };
    if shape.len() != 4 || shape[1] <= 0 || head_dim.is_none() {
        return Err(format!(
            "past_key_values.0.key has shape {shape:?}; expected [batch, kv_heads, past, head_dim] \
             with fixed kv_heads and head_dim"
        ));
    }
    let outputs = session.outputs();
    let out_has = |n: &str| outputs.iter().any(|o| o.name() == n);
    if !out_has("logits") {
        return Err("the model has no `logits` output".into());
    }
    for i in 0..num_layers {
        for kind in ["key", "value"] {
            if !out_has(&format!("present.{i}.{kind}")) {
                return Err(format!("the model has no `present.{i}.{kind}` output"));
            }
        }
    }
    let vocab = outputs.iter().find(|o| o.name() == "logits").and_then(|o| match o.dtype() {
        ValueType::Tensor { shape, .. } if shape.len() == 3 && shape[2] > 0 => Some(shape[2] as usize),
        _ => None,
    });
    Ok(ModelSpec {
        num_layers,
        kv_heads: shape[1] as usize,
        head_dim: head_dim.unwrap_or_default(),
        vocab,
        has_position_ids: has("position_ids"),
        layout,
    })
}

/// `model.decoder.head_size` of the `genai_config.json` beside the model, which
/// onnxruntime-genai's model builder writes.
fn genai_head_size(model: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(model.parent()?.join("genai_config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    config["model"]["decoder"]["head_size"].as_u64().map(|h| h as usize)
}

/// Converts a tensor creation error.
pub(crate) fn tensor_err(e: ort::Error) -> OnnxError {
    OnnxError::Inference(format!("cannot build a tensor: {e}"))
}

/// Builds an owned f32 tensor.
pub(crate) fn f32_tensor(shape: [usize; 4], data: Vec<f32>) -> Result<DynValue> {
    Tensor::from_array((shape, data)).map(|t| t.into_dyn()).map_err(tensor_err)
}
