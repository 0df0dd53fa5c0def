//! The ONNX decoder in the Optimum `text-generation-with-past` layout: loading, shape discovery
//! and one forward pass.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, Tensor, TensorRef, ValueType};
use tracing::{debug, warn};

use crate::device::{self, Device};
use crate::error::{OnnxError, Result};
use crate::kv::Kv;
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
    /// and leaves the head size symbolic (it is in `genai_config.json`). Its key/value cache is
    /// used here as past in, present out (the builder's shared-buffer mode is not used).
    GenaiBuilder,
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
    session: Session,
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
    /// is dropped and the model loaded as it is.
    pub fn load(path: &Path, opts: SessionOptions) -> Result<Self> {
        // A missing or unloadable library is reported as itself, not as a refused rewrite.
        ortlib::environment()?;
        let model_err = |m: String| OnnxError::model(path, m);
        crate::memory::check_fits(path, None)?;
        let bytes = std::fs::read(path).map_err(|e| model_err(format!("cannot read: {e}")))?;
        let rewritten = if opts.keep_graph { None } else { rewritten_session(path, &bytes, opts) };
        let last_position_logits = rewritten.as_ref().is_some_and(|(_, r)| r.last_position_logits);
        let shape_fold = rewritten.as_ref().and_then(|(_, r)| r.shape_fold);
        if let Some(report) = shape_fold {
            debug!(path = %path.display(), ?report, "shape arithmetic folded");
        }
        let (session, device) = match rewritten {
            Some((s, _)) => s,
            None => build_session(path, &bytes, opts)?,
        };
        let spec = discover(&session, path).map_err(model_err)?;
        debug!(path = %path.display(), ?spec, last_position_logits, "decoder loaded");
        let past_names = (0..spec.num_layers)
            .flat_map(|i| [format!("past_key_values.{i}.key"), format!("past_key_values.{i}.value")])
            .collect();
        let present_names =
            (0..spec.num_layers).flat_map(|i| [format!("present.{i}.key"), format!("present.{i}.value")]).collect();
        Ok(Decoder {
            session,
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

    /// A second, independent session of the same model (its own copy of the weights), for a
    /// thread that runs passes at the same time as this one.
    pub fn load_again(&self) -> Result<Decoder> {
        Decoder::load(&self.path, self.options)
    }

    /// An empty cache (`[batch, kv_heads, 0, head_dim]`) for a first pass.
    pub fn empty_kv(&self, batch: usize) -> Result<Kv> {
        Kv::zeros(&self.spec, batch, 0)
    }

    /// Runs `ids` (`[batch, seq]`, row-major) on top of `past`.
    ///
    /// `mask` is `[batch, past + seq]` and `positions` `[batch, seq]`.
    pub fn forward(&mut self, ids: &[i64], mask: &[i64], positions: &[i64], past: &Kv) -> Result<Forward> {
        let batch = past.batch;
        let seq = ids.len() / batch.max(1);
        debug_assert_eq!(ids.len(), batch * seq);
        debug_assert_eq!(mask.len(), batch * (past.len + seq));
        let inf = |e: ort::Error| OnnxError::Inference(e.to_string());
        let ids_t = TensorRef::from_array_view(([batch, seq], ids)).map_err(inf)?;
        let mask_t = TensorRef::from_array_view(([batch, past.len + seq], mask)).map_err(inf)?;
        let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = Vec::with_capacity(3 + past.tensors.len());
        inputs.push(("input_ids".into(), ids_t.into()));
        inputs.push(("attention_mask".into(), mask_t.into()));
        if self.spec.has_position_ids {
            let pos_t = TensorRef::from_array_view(([batch, seq], positions)).map_err(inf)?;
            inputs.push(("position_ids".into(), pos_t.into()));
        }
        for (name, t) in self.past_names.iter().zip(&past.tensors) {
            inputs.push((Cow::Borrowed(name.as_str()), t.into()));
        }
        let mut out = self.session.run(inputs).map_err(inf)?;
        let logits =
            out.remove("logits").ok_or_else(|| OnnxError::Inference("the model returned no `logits`".into()))?;
        let (shape, data) = logits.try_extract_tensor::<f32>().map_err(inf)?;
        let rows = if self.last_position_logits { 1 } else { seq };
        if shape.len() != 3 || shape[0] as usize != batch || shape[1] as usize != rows {
            return Err(OnnxError::Inference(format!("unexpected logits shape {shape:?}")));
        }
        let vocab = shape[2] as usize;
        let mut last_logits = Vec::with_capacity(batch * vocab);
        for b in 0..batch {
            let start = (b * rows + rows - 1) * vocab;
            last_logits.extend_from_slice(&data[start..start + vocab]);
        }
        let mut tensors: Vec<DynValue> = Vec::with_capacity(self.present_names.len());
        for name in &self.present_names {
            let t = out
                .remove(name.as_str())
                .ok_or_else(|| OnnxError::Inference(format!("the model returned no `{name}`")))?;
            tensors.push(t);
        }
        Ok(Forward { last_logits, vocab, kv: Kv { tensors, batch, len: past.len + seq } })
    }
}

/// A session for the rewritten graph, or `None` (logged) when the rewrite does not apply or ONNX
/// Runtime refuses it.
fn rewritten_session(path: &Path, bytes: &[u8], opts: SessionOptions) -> Option<((Session, Device), graph::Rewritten)> {
    let rewritten =
        graph::rewrite(bytes).map_err(|why| debug!(path = %path.display(), "graph not rewritten: {why}")).ok()?;
    match build_session(path, &rewritten.bytes, opts) {
        Ok(session) => Some((session, rewritten)),
        Err(e) => {
            warn!(path = %path.display(), "the rewritten graph did not load ({e}); using the model as it is");
            None
        }
    }
}

/// A session for the model in `bytes`, on the requested device (or CPU when it falls back).
fn build_session(path: &Path, bytes: &[u8], opts: SessionOptions) -> Result<(Session, Device)> {
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
    let (mut builder, device) = device::apply(builder, opts.device);
    let session = builder.commit_from_memory(bytes).map_err(|e| {
        model_err(format!("not a loadable ONNX model ({e}); re-export it with Optimum (text-generation-with-past)"))
    })?;
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
