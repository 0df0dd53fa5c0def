//! The key/value cache of a batch: one `[batch, kv_heads, columns, head_dim]` tensor per layer
//! and kind, in the order key 0, value 0, key 1, value 1, ...
//!
//! Two arrangements, one per decoder layout:
//! * [`Padding::Left`] (Optimum): exactly `len` columns; a row's valid positions are its last
//!   `valid` columns. Each pass returns a new, longer cache.
//! * [`Padding::Right`] (onnxruntime-genai's builder, `GroupQueryAttention`): `cap` columns
//!   allocated, a row's valid positions are its first `valid` columns, and each pass writes its new
//!   positions into the same buffer (`len` is the longest row; see `Decoder::forward`).

use ort::memory::Allocator;
use ort::value::{DynValue, Tensor};

use crate::decoder::{f32_tensor, tensor_err, ModelSpec};
use crate::error::Result;

/// Where a row's valid columns sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    Left,
    Right,
}

/// Columns a right-padded cache is given beyond what it holds, so that decoding does not grow it
/// on every step.
pub const HEADROOM: usize = 128;

/// A batch's cache.
pub struct Kv {
    pub tensors: Vec<DynValue>,
    pub batch: usize,
    /// Columns in use: the past length (padding included) a pass builds its mask for.
    pub len: usize,
    /// Columns allocated (`len` when left-padded).
    pub cap: usize,
    pub padding: Padding,
}

/// One row to copy into a new cache: `(source, row in source, valid columns)`.
pub type RowRef<'a> = (&'a Kv, usize, usize);

impl Kv {
    /// A zero-filled cache of `len` columns in use (0 gives the empty past of a first pass).
    pub fn zeros(spec: &ModelSpec, padding: Padding, batch: usize, len: usize) -> Result<Kv> {
        let cap = columns_for(padding, len);
        let tensors =
            (0..2 * spec.num_layers).map(|_| zero_tensor(spec, padding, batch, cap)).collect::<Result<Vec<_>>>()?;
        Ok(Kv { tensors, batch, len, cap, padding })
    }

    /// A new cache, arranged by `padding`, of `len` columns in use, whose row `i` holds the
    /// `valid` columns of `rows[i]` and zeros elsewhere.
    pub fn gather(spec: &ModelSpec, padding: Padding, rows: &[RowRef<'_>], len: usize) -> Result<Kv> {
        Self::gather_into(spec, padding, rows, len, columns_for(padding, len))
    }

    /// The same rows in a right-padded buffer of at least `cap` columns (more room to decode in).
    pub fn grown(&self, spec: &ModelSpec, cap: usize) -> Result<Kv> {
        let rows: Vec<RowRef<'_>> = (0..self.batch).map(|b| (self, b, self.len)).collect();
        Self::gather_into(spec, self.padding, &rows, self.len, cap.max(self.len))
    }

    fn gather_into(spec: &ModelSpec, padding: Padding, rows: &[RowRef<'_>], len: usize, cap: usize) -> Result<Kv> {
        let (h, d) = (spec.kv_heads, spec.head_dim);
        let batch = rows.len();
        let mut tensors = Vec::with_capacity(2 * spec.num_layers);
        for t in 0..2 * spec.num_layers {
            let mut out = zero_tensor(spec, padding, batch, cap)?;
            let (_, data) = out.try_extract_tensor_mut::<f32>().map_err(tensor_err)?;
            for (out_row, &(src, src_row, valid)) in rows.iter().enumerate() {
                debug_assert!(valid <= len && valid <= src.len);
                let (_, sdata) = src.tensors[t].try_extract_tensor::<f32>().map_err(tensor_err)?;
                let from = match src.padding {
                    Padding::Left => src.cap - valid,
                    Padding::Right => 0,
                };
                let to = match padding {
                    Padding::Left => cap - valid,
                    Padding::Right => 0,
                };
                for head in 0..h {
                    let s0 = ((src_row * h + head) * src.cap + from) * d;
                    let o0 = ((out_row * h + head) * cap + to) * d;
                    data[o0..o0 + valid * d].copy_from_slice(&sdata[s0..s0 + valid * d]);
                }
            }
            tensors.push(out);
        }
        Ok(Kv { tensors, batch, len, cap, padding })
    }
}

/// Columns to allocate for `len` in use.
fn columns_for(padding: Padding, len: usize) -> usize {
    match padding {
        Padding::Left => len,
        Padding::Right => len + HEADROOM,
    }
}

/// A zeroed `[batch, kv_heads, cap, head_dim]` tensor. A right-padded cache is allocated by ONNX
/// Runtime, since only such a tensor can be bound as the output a pass writes in place.
fn zero_tensor(spec: &ModelSpec, padding: Padding, batch: usize, cap: usize) -> Result<DynValue> {
    let shape = [batch, spec.kv_heads, cap, spec.head_dim];
    match padding {
        Padding::Left => f32_tensor(shape, vec![0.0; shape.iter().product()]),
        Padding::Right => {
            let mut t = Tensor::<f32>::new(&Allocator::default(), shape).map_err(tensor_err)?;
            t.try_extract_tensor_mut::<f32>().map_err(tensor_err)?.1.fill(0.0);
            Ok(t.into_dyn())
        }
    }
}
