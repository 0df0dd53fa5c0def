//! One copy of a model's weights for all its ONNX Runtime sessions.
//!
//! The initializers a model keeps in external data are memory-mapped once and handed to
//! every session as *shared initializers* (`AddInitializer`: ONNX Runtime uses the caller's
//! buffer and copies nothing). Sessions given the same [`PrepackedWeights`] container then also
//! share the re-laid-out forms their kernels make of those weights (MLAS's packed GEMM panels,
//! `MatMulNBits`' packed blocks): ONNX Runtime caches pre-packed weights only for shared
//! initializers, which is why the container alone changes nothing.
//!
//! ONNX Runtime drops its own reference to a weight once every kernel that reads it has packed
//! it, but a shared one stays mapped here. Its pages are clean copies of the file, so while and
//! after a session is built they are released ([`SharedWeights::while_packing`]) and only the
//! pages of weights read as they are (embeddings, norms) come back, from the page cache, when
//! read.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use memmap2::{Mmap, UncheckedAdvice};
use onnx_protobuf::{tensor_proto, GraphProto, Message, ModelProto, TensorProto};
use ort::memory::MemoryInfo;
use ort::session::builder::{PrepackedWeights, SessionBuilder};
use ort::value::{DynValueTypeMarker, PrimitiveTensorElementType, Shape, TensorRefMut, ValueRefMut};
use ort::AsPointer;

/// The memory-mapped weights of one model and the pre-packed forms its sessions share.
pub struct SharedWeights {
    /// Named tensors over `maps`; declared first so they are released before the mappings.
    tensors: Vec<(CString, ValueRefMut<'static, DynValueTypeMarker>)>,
    maps: Vec<Arc<Mmap>>,
    prepacked: PrepackedWeights,
    /// Bytes of the shared initializers.
    pub bytes: u64,
}

// SAFETY: the tensors are read-only views of `maps`, which live as long as they do; ONNX Runtime
// only reads shared initializers, from any thread.
unsafe impl Send for SharedWeights {}
unsafe impl Sync for SharedWeights {}

impl std::fmt::Debug for SharedWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedWeights").field("tensors", &self.tensors.len()).field("bytes", &self.bytes).finish()
    }
}

impl SharedWeights {
    /// Maps the external data of the model in `model_bytes` (stored beside `path`); `Ok(None)`
    /// when it has no large external initializer.
    pub fn map(path: &Path, model_bytes: &[u8]) -> Result<Option<SharedWeights>, String> {
        let model = ModelProto::parse_from_bytes(model_bytes).map_err(|e| format!("cannot parse the model: {e}"))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut files: HashMap<String, Arc<Mmap>> = HashMap::new();
        let mut tensors = Vec::new();
        let mut bytes = 0;
        let Some(graph) = model.graph.as_ref() else { return Ok(None) };
        let folded = folded_inputs(graph);
        for init in &graph.initializer {
            let Some(place) = external(init) else { continue };
            if folded.contains(init.name.as_str()) {
                continue;
            }
            let map = match files.get(&place.location) {
                Some(m) => m.clone(),
                None => {
                    let m = Arc::new(map_file(&dir.join(&place.location))?);
                    files.insert(place.location.clone(), m.clone());
                    m
                }
            };
            let Some(tensor) = tensor_over(&map, init, &place)? else { continue };
            let name = CString::new(init.name.as_str()).map_err(|_| format!("initializer name {:?}", init.name))?;
            tensors.push((name, tensor));
            bytes += place.length;
        }
        if tensors.is_empty() {
            return Ok(None);
        }
        Ok(Some(SharedWeights {
            tensors,
            maps: files.into_values().collect(),
            prepacked: PrepackedWeights::new(),
            bytes,
        }))
    }

    /// How many initializers are shared.
    pub fn count(&self) -> usize {
        self.tensors.len()
    }

    /// Hands the shared initializers and the pre-packed weights container to a session.
    pub fn apply(&self, mut builder: SessionBuilder) -> Result<SessionBuilder, String> {
        let api = ort::api();
        for (name, tensor) in &self.tensors {
            // SAFETY: both pointers are live; ONNX Runtime keeps the value's pointer, which stays
            // valid as long as `self` does, and every session holds `self` (see `Decoder`).
            let status = unsafe { (api.AddInitializer)(builder.ptr_mut(), name.as_ptr(), tensor.ptr()) };
            if !status.0.is_null() {
                // SAFETY: a non-null status is ONNX Runtime's error object, released once here.
                let message = unsafe {
                    let m = std::ffi::CStr::from_ptr((api.GetErrorMessage)(status.0)).to_string_lossy().into_owned();
                    (api.ReleaseStatus)(status.0);
                    m
                };
                return Err(format!("cannot share initializer {name:?}: {message}"));
            }
        }
        builder.with_prepacked_weights(&self.prepacked).map_err(|e| format!("cannot share pre-packed weights: {e}"))
    }

    /// Runs `build` (a session's commit) while dropping the mapped pages it reads every few
    /// milliseconds, and once more after it: packing reads each weight once and most are only
    /// read packed from then on, so the mapped copy never accumulates beside the packed one.
    pub fn while_packing<T>(&self, build: impl FnOnce() -> T) -> T {
        let done = AtomicBool::new(false);
        let out = std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                    self.release_pages();
                }
            });
            let out = build();
            done.store(true, Ordering::Relaxed);
            out
        });
        self.release_pages();
        out
    }

    /// Drops the mapped pages from this process (they are clean: the mapping is read-only, so a
    /// later read faults them back in from the file).
    pub fn release_pages(&self) {
        for map in &self.maps {
            // SAFETY: nothing writes these private read-only mappings, so no data is lost.
            if let Err(e) = unsafe { map.unchecked_advise(UncheckedAdvice::DontNeed) } {
                tracing::debug!("cannot release mapped weight pages: {e}");
            }
        }
    }
}

/// Initializers read by a node whose inputs are all constant: ONNX Runtime folds such a node
/// into a new weight (a tied LM head's `Transpose` of the embedding, say), but never when an
/// input is a shared initializer, and the node would then run on every pass.
fn folded_inputs(graph: &GraphProto) -> HashSet<&str> {
    let constant: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut out = HashSet::new();
    for node in &graph.node {
        let inputs = node.input.iter().filter(|i| !i.is_empty());
        if inputs.clone().all(|i| constant.contains(i.as_str())) {
            out.extend(inputs.map(String::as_str));
        }
    }
    out
}

/// Where an initializer's data lies in its external file.
struct Place {
    location: String,
    offset: u64,
    length: u64,
}

fn external(t: &TensorProto) -> Option<Place> {
    if t.data_location.enum_value_or_default() != tensor_proto::DataLocation::EXTERNAL {
        return None;
    }
    let get = |k: &str| t.external_data.iter().find(|e| e.key == k).map(|e| e.value.as_str());
    // Only files inside the model's folder, as ONNX Runtime itself insists; anything else is left
    // to ONNX Runtime, which refuses it with its own error.
    let inside = |l: &str| Path::new(l).components().all(|c| matches!(c, std::path::Component::Normal(_)));
    Some(Place {
        location: get("location").filter(|l| inside(l))?.to_string(),
        offset: get("offset").map_or(Some(0), |v| v.parse().ok())?,
        length: get("length")?.parse().ok()?,
    })
}

fn map_file(file: &PathBuf) -> Result<Mmap, String> {
    let f = File::open(file).map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    // SAFETY: the weights file must not change while the model is loaded, as with ONNX Runtime's
    // own loading of external data.
    unsafe { Mmap::map(&f) }.map_err(|e| format!("cannot map {}: {e}", file.display()))
}

/// A tensor viewing the initializer's bytes in `map`, or `None` for an element type or an
/// alignment it is not shared with (ONNX Runtime then loads that one itself).
fn tensor_over(
    map: &Arc<Mmap>,
    t: &TensorProto,
    place: &Place,
) -> Result<Option<ValueRefMut<'static, DynValueTypeMarker>>, String> {
    use tensor_proto::DataType as D;
    let end = place.offset.checked_add(place.length).filter(|&e| e <= map.len() as u64);
    if end.is_none() {
        return Err(format!("initializer {} lies beyond the end of {}", t.name, place.location));
    }
    let shape = Shape::new(t.dims.iter().copied());
    fn view<T: PrimitiveTensorElementType + std::fmt::Debug>(
        map: &Mmap,
        place: &Place,
        shape: Shape,
    ) -> Option<Result<ValueRefMut<'static, DynValueTypeMarker>, String>> {
        let elements = shape.num_elements() as u64;
        let size = std::mem::size_of::<T>() as u64;
        if elements * size != place.length || !place.offset.is_multiple_of(size) {
            return None;
        }
        let ptr = map[place.offset as usize..].as_ptr().cast_mut().cast();
        // SAFETY: the range is inside the mapping (checked above), aligned for `T`, and the
        // mapping outlives the tensor (`SharedWeights` drops the tensors first). ONNX Runtime
        // only reads initializers, so the read-only mapping is never written.
        let tensor = unsafe { TensorRefMut::<'static, T>::from_raw(MemoryInfo::default(), ptr, shape) };
        Some(tensor.map(|t| t.into_dyn()).map_err(|e| format!("cannot make a tensor: {e}")))
    }
    let made = match t.data_type {
        x if x == D::FLOAT as i32 => view::<f32>(map, place, shape),
        x if x == D::UINT8 as i32 => view::<u8>(map, place, shape),
        x if x == D::INT8 as i32 => view::<i8>(map, place, shape),
        x if x == D::UINT16 as i32 => view::<u16>(map, place, shape),
        x if x == D::INT16 as i32 => view::<i16>(map, place, shape),
        x if x == D::INT32 as i32 => view::<i32>(map, place, shape),
        x if x == D::INT64 as i32 => view::<i64>(map, place, shape),
        x if x == D::DOUBLE as i32 => view::<f64>(map, place, shape),
        _ => None,
    };
    made.transpose()
}

#[cfg(test)]
mod tests {
    use onnx_protobuf::{tensor_proto::DataLocation, StringStringEntryProto, TensorProto};

    use super::external;

    fn stored_at(location: &str) -> TensorProto {
        let entry = |k: &str, v: &str| {
            let mut e = StringStringEntryProto::new();
            e.key = k.into();
            e.value = v.into();
            e
        };
        let mut t = TensorProto::new();
        t.data_location = DataLocation::EXTERNAL.into();
        t.external_data = vec![entry("location", location), entry("offset", "0"), entry("length", "4")];
        t
    }

    #[test]
    fn only_external_data_inside_the_model_folder_is_mapped() {
        assert!(external(&stored_at("model.onnx_data")).is_some());
        assert!(external(&stored_at("weights/part1.bin")).is_some());
        for outside in ["../secret.bin", "/etc/passwd", "weights/../../x"] {
            assert!(external(&stored_at(outside)).is_none(), "{outside}");
        }
    }
}
