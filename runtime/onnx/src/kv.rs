//! The key/value cache of a batch: one `[batch, kv_heads, len, head_dim]` tensor per layer and
//! kind, in the order key 0, value 0, key 1, value 1, ...
//!
//! Rows are left-padded: a row's valid positions are the last `valid` columns.

use ort::value::DynValue;

use crate::decoder::{f32_tensor, tensor_err, ModelSpec};
use crate::error::Result;

/// A batch's cache.
pub struct Kv {
    pub tensors: Vec<DynValue>,
    pub batch: usize,
    /// Columns (past length), padding included.
    pub len: usize,
}

/// One row to copy into a new cache: `(source, row in source, valid columns)`.
pub type RowRef<'a> = (&'a Kv, usize, usize);

impl Kv {
    /// A zero-filled cache (length 0 gives the empty past of a first pass).
    pub fn zeros(spec: &ModelSpec, batch: usize, len: usize) -> Result<Kv> {
        let n = batch * spec.kv_heads * len * spec.head_dim;
        let tensors = (0..2 * spec.num_layers)
            .map(|_| f32_tensor([batch, spec.kv_heads, len, spec.head_dim], vec![0.0; n]))
            .collect::<Result<Vec<_>>>()?;
        Ok(Kv { tensors, batch, len })
    }

    /// A new left-padded cache of `len` columns whose row `i` holds the last `valid` columns of
    /// `rows[i]` (right-aligned) and zeros before them.
    pub fn gather(spec: &ModelSpec, rows: &[RowRef<'_>], len: usize) -> Result<Kv> {
        let (h, d) = (spec.kv_heads, spec.head_dim);
        let batch = rows.len();
        let mut tensors = Vec::with_capacity(2 * spec.num_layers);
        for t in 0..2 * spec.num_layers {
            let mut data = vec![0.0f32; batch * h * len * d];
            for (out_row, &(src, src_row, valid)) in rows.iter().enumerate() {
                debug_assert!(valid <= len && valid <= src.len);
                let (_, sdata) = src.tensors[t].try_extract_tensor::<f32>().map_err(tensor_err)?;
                for head in 0..h {
                    let s0 = ((src_row * h + head) * src.len + (src.len - valid)) * d;
                    let o0 = ((out_row * h + head) * len + (len - valid)) * d;
                    data[o0..o0 + valid * d].copy_from_slice(&sdata[s0..s0 + valid * d]);
                }
            }
            tensors.push(f32_tensor([batch, h, len, d], data)?);
        }
        Ok(Kv { tensors, batch, len })
    }
}
