//! Shape inference over polynomial sizes, and the values of small integer tensors, for
//! [`shape_fold`](super::shape_fold). Every rule is conservative: what it cannot derive is
//! unknown (or a fresh size that equals nothing else), never guessed.

use std::collections::HashMap;

use onnx_protobuf::tensor_proto::{DataLocation, DataType};
use onnx_protobuf::{AttributeProto, GraphProto, NodeProto, TensorProto};

use super::symbolic::{Atoms, Dim};

/// Integer tensors larger than this are not tracked by value (shape vectors are a handful).
const MAX_VALUE_ELEMENTS: usize = 64;
pub(super) const INT64: i32 = DataType::INT64 as i32;
pub(super) const INT32: i32 = DataType::INT32 as i32;
pub(super) const BOOL: i32 = DataType::BOOL as i32;
/// The domain of ONNX Runtime's contrib ops (`MatMulNBits`, `GroupQueryAttention`, ...).
pub(super) const MICROSOFT: &str = "com.microsoft";

/// Ops whose output has the shape of their first input.
const SAME_SHAPE: &[&str] = &[
    "Neg",
    "Sqrt",
    "Reciprocal",
    "Sigmoid",
    "Tanh",
    "Sin",
    "Cos",
    "Exp",
    "Log",
    "Softmax",
    "LogSoftmax",
    "IsNaN",
    "IsInf",
    "Not",
    "Relu",
    "Erf",
    "Abs",
    "Floor",
    "Ceil",
    "Round",
    "Trilu",
    "Gelu",
    "Silu",
    "CumSum",
];
/// Element-wise ops with numpy broadcasting.
const BROADCAST: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Equal",
    "Less",
    "LessOrEqual",
    "Greater",
    "GreaterOrEqual",
    "And",
    "Or",
    "Max",
    "Min",
    "Mod",
];
const COMPARISONS: &[&str] = &["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Not"];

/// What is known about one tensor.
#[derive(Clone, Debug, Default)]
pub(super) struct Info {
    pub shape: Option<Vec<Dim>>,
    /// Row-major elements of a small integer or boolean tensor.
    pub value: Option<Vec<Dim>>,
    /// Element type of `value`.
    pub dtype: i32,
}

impl Info {
    fn shaped(shape: Option<Vec<Dim>>) -> Info {
        Info { shape, ..Info::default() }
    }

    fn valued(shape: Vec<Dim>, value: Vec<Dim>, dtype: i32) -> Info {
        Info { shape: Some(shape), value: Some(value), dtype }
    }

    /// The value as constants, when every element is known.
    pub fn constants(&self) -> Option<Vec<i64>> {
        self.value.as_ref()?.iter().map(Dim::as_known).collect()
    }

    /// The value of a 0-D or 1-D tensor as a list.
    /// Only when its length is certain: a value never stands for a tensor of another size.
    pub fn list(&self) -> Option<&Vec<Dim>> {
        let value = self.value.as_ref()?;
        match self.shape.as_deref()? {
            [] => (value.len() == 1).then_some(value),
            [n] => (n.as_known() == Some(value.len() as i64)).then_some(value),
            _ => None,
        }
    }
}

/// Shapes and small values of every tensor, in one pass over the (topologically sorted) nodes.
pub(super) fn infer(graph: &GraphProto) -> HashMap<String, Info> {
    let mut atoms = Atoms::default();
    let mut infos: HashMap<String, Info> = HashMap::new();
    for t in &graph.initializer {
        infos.insert(t.name.clone(), tensor_info(t));
    }
    for input in &graph.input {
        if infos.contains_key(&input.name) {
            continue;
        }
        let dims = input.type_.as_ref().filter(|t| t.has_tensor_type()).and_then(|t| t.tensor_type().shape.as_ref());
        let shape = dims.map(|s| {
            s.dim
                .iter()
                .map(|d| {
                    if d.has_dim_value() {
                        Dim::known(d.dim_value())
                    } else if d.has_dim_param() {
                        atoms.parse(d.dim_param())
                    } else {
                        atoms.fresh()
                    }
                })
                .collect()
        });
        infos.insert(input.name.clone(), Info::shaped(shape));
    }
    for node in &graph.node {
        let outs = node_infos(node, &infos, &mut atoms);
        for (name, info) in node.output.iter().zip(outs) {
            infos.insert(name.clone(), info);
        }
    }
    infos
}

/// What `node` produces, from what it reads.
fn node_infos(node: &NodeProto, infos: &HashMap<String, Info>, atoms: &mut Atoms) -> Vec<Info> {
    let none = Info::default();
    let input = |k: usize| node.input.get(k).filter(|n| !n.is_empty()).and_then(|n| infos.get(n)).unwrap_or(&none);
    let op = node.op_type.as_str();
    if node.domain == MICROSOFT && op == "MatMulNBits" {
        // Weight-only quantised MatMul (int4/int8): `A [.., K] x B[K, N]`, N an attribute.
        let mut out = vec![Info::default(); node.output.len()];
        out[0] = matmul_nbits(node, input(0));
        return out;
    }
    if !node.domain.is_empty() && node.domain != "ai.onnx" {
        return vec![Info::default(); node.output.len()];
    }
    let one = match op {
        "Constant" => constant_info(node),
        "Identity" => input(0).clone(),
        "Shape" => shape_of(node, input(0)),
        "Cast" => cast(node, input(0)),
        "Neg" => {
            let x = input(0);
            Info { value: x.value.as_ref().map(|v| v.iter().map(Dim::neg).collect()), ..x.clone() }
        }
        _ if SAME_SHAPE.contains(&op) => Info::shaped(input(0).shape.clone()),
        _ if BROADCAST.contains(&op) => binary(op, input(0), input(1), atoms),
        "Where" => where_(input(0), input(1), input(2), atoms),
        "Unsqueeze" | "Squeeze" => squeeze(node, input(0), input(1)),
        "Concat" => concat(node, infos),
        "Gather" => gather(node, input(0), input(1)),
        // With `allowzero`, a 0 in the target is a size, not "copy"; not worth modelling.
        "Reshape" if attr_int(node, "allowzero").unwrap_or(0) != 0 => Info::default(),
        "Reshape" => reshape(input(0), input(1), atoms),
        "Expand" => expand(input(0), input(1), atoms),
        "Transpose" => transpose(node, input(0)),
        "Slice" => slice(input(0), input(1), input(2), input(3), input(4), atoms),
        "ConstantOfShape" => constant_of_shape(node, input(0)),
        "Range" => range(input(0), input(1), input(2), atoms),
        "MatMul" => matmul(input(0), input(1), atoms),
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" => reduce(node, input(0), input(1)),
        "Flatten" => flatten(node, input(0)),
        _ => return vec![Info::default(); node.output.len()],
    };
    let mut out = vec![Info::default(); node.output.len()];
    if let Some(first) = out.first_mut() {
        *first = one;
    }
    out
}

fn constant_info(node: &NodeProto) -> Info {
    if let Some(t) = attr(node, "value").and_then(|a| a.t.as_ref()) {
        return tensor_info(t);
    }
    if let Some(a) = attr(node, "value_int") {
        return Info::valued(vec![], vec![Dim::known(a.i)], INT64);
    }
    if let Some(a) = attr(node, "value_ints") {
        let v: Vec<Dim> = a.ints.iter().map(|&i| Dim::known(i)).collect();
        return Info::valued(vec![Dim::known(v.len() as i64)], v, INT64);
    }
    Info::default()
}

fn shape_of(node: &NodeProto, x: &Info) -> Info {
    let Some(shape) = &x.shape else { return Info::default() };
    let rank = shape.len() as i64;
    let clamp = |i: i64| from_end(i, rank as usize).clamp(0, rank) as usize;
    let start = clamp(attr_int(node, "start").unwrap_or(0));
    let end = clamp(attr_int(node, "end").unwrap_or(rank));
    let value: Vec<Dim> = shape[start..end.max(start)].to_vec();
    Info::valued(vec![Dim::known(value.len() as i64)], value, INT64)
}

fn cast(node: &NodeProto, x: &Info) -> Info {
    let to = attr_int(node, "to").unwrap_or(0) as i32;
    let value = match to {
        INT64 | INT32 => x.value.clone(),
        BOOL => x.constants().map(|v| v.iter().map(|&c| Dim::known((c != 0) as i64)).collect()),
        _ => None,
    };
    Info { shape: x.shape.clone(), value, dtype: to }
}

fn binary(op: &str, a: &Info, b: &Info, atoms: &mut Atoms) -> Info {
    let shape = broadcast(a.shape.as_ref(), b.shape.as_ref(), atoms);
    let dtype = if COMPARISONS.contains(&op) { BOOL } else { a.dtype };
    let value = match (a.list(), b.list(), &shape) {
        (Some(x), Some(y), Some(s)) if s.len() <= 1 => {
            let n = x.len().max(y.len());
            let pick = |v: &Vec<Dim>, i: usize| v.get(if v.len() == 1 { 0 } else { i }).cloned();
            (0..n).map(|i| elementwise(op, &pick(x, i)?, &pick(y, i)?)).collect::<Option<Vec<_>>>()
        }
        _ => None,
    };
    Info { shape, value, dtype }
}

/// One element of an integer op, where the result is certain.
fn elementwise(op: &str, x: &Dim, y: &Dim) -> Option<Dim> {
    let both = x.as_known().zip(y.as_known());
    let truth = |b: bool| Some(Dim::known(b as i64));
    match op {
        "Add" => Some(x.add(y)),
        "Sub" => Some(x.sub(y)),
        "Mul" => Some(x.mul(y)),
        // Exact division is the same whichever way the op rounds.
        "Div" => x.div_exact(y),
        "Equal" => {
            let diff = x.sub(y);
            if let Some(c) = diff.as_known() {
                return truth(c == 0);
            }
            // Sizes are never negative: sizes plus a positive constant are never zero.
            let c = diff.constant_term();
            let never_zero = (diff.never_negative() && c > 0) || (diff.neg().never_negative() && c < 0);
            never_zero.then(|| Dim::known(0))
        }
        "Less" => both.map(|(a, b)| Dim::known((a < b) as i64)),
        "LessOrEqual" => both.map(|(a, b)| Dim::known((a <= b) as i64)),
        "Greater" => both.map(|(a, b)| Dim::known((a > b) as i64)),
        "GreaterOrEqual" => both.map(|(a, b)| Dim::known((a >= b) as i64)),
        "And" => both.map(|(a, b)| Dim::known((a != 0 && b != 0) as i64)),
        "Or" => both.map(|(a, b)| Dim::known((a != 0 || b != 0) as i64)),
        "Max" => both.map(|(a, b)| Dim::known(a.max(b))),
        "Min" => both.map(|(a, b)| Dim::known(a.min(b))),
        _ => None,
    }
}

fn where_(cond: &Info, x: &Info, y: &Info, atoms: &mut Atoms) -> Info {
    let xy = broadcast(x.shape.as_ref(), y.shape.as_ref(), atoms);
    let shape = broadcast(cond.shape.as_ref(), xy.as_ref(), atoms);
    let value = match (cond.list(), x.list(), y.list(), &shape) {
        (Some(c), Some(a), Some(b), Some(s)) if s.len() <= 1 => {
            let n = c.len().max(a.len()).max(b.len());
            let pick = |v: &Vec<Dim>, i: usize| v.get(if v.len() == 1 { 0 } else { i }).cloned();
            (0..n)
                .map(|i| match pick(c, i)?.as_known()? {
                    0 => pick(b, i),
                    _ => pick(a, i),
                })
                .collect::<Option<Vec<_>>>()
        }
        _ => None,
    };
    Info { shape, value, dtype: x.dtype }
}

/// Unsqueeze or Squeeze, with axes from the input (opset 13) or the attribute.
fn squeeze(node: &NodeProto, x: &Info, axes_input: &Info) -> Info {
    let axes = axes_input.constants().or_else(|| attr_ints(node, "axes"));
    let shape = x.shape.as_ref().and_then(|s| {
        let axes = axes?;
        let mut dims = s.clone();
        if node.op_type == "Unsqueeze" {
            let rank = (s.len() + axes.len()) as i64;
            let mut norm: Vec<usize> = axes.iter().map(|&a| from_end(a, rank as usize) as usize).collect();
            norm.sort_unstable();
            for a in norm {
                if a > dims.len() {
                    return None;
                }
                dims.insert(a, Dim::known(1));
            }
        } else {
            let rank = s.len() as i64;
            let mut norm: Vec<usize> = axes.iter().map(|&a| from_end(a, rank as usize) as usize).collect();
            norm.sort_unstable_by(|a, b| b.cmp(a));
            for a in norm {
                if a >= dims.len() {
                    return None;
                }
                dims.remove(a);
            }
        }
        Some(dims)
    });
    Info { shape, value: x.value.clone(), dtype: x.dtype }
}

fn concat(node: &NodeProto, infos: &HashMap<String, Info>) -> Info {
    let parts: Option<Vec<&Info>> = node.input.iter().map(|n| infos.get(n)).collect();
    let Some(parts) = parts else { return Info::default() };
    let axis = attr_int(node, "axis").unwrap_or(0);
    let shapes: Option<Vec<&Vec<Dim>>> = parts.iter().map(|p| p.shape.as_ref()).collect();
    let shape = shapes.and_then(|shapes| {
        let first = shapes.first()?;
        let rank = first.len() as i64;
        let axis = from_end(axis, rank as usize) as usize;
        if axis >= first.len() || shapes.iter().any(|s| s.len() != first.len()) {
            return None;
        }
        let mut out = (*first).clone();
        out[axis] = shapes.iter().fold(Dim::known(0), |acc, s| acc.add(&s[axis]));
        Some(out)
    });
    let value = parts
        .iter()
        .map(|p| p.list())
        .collect::<Option<Vec<_>>>()
        .map(|lists| lists.into_iter().flatten().cloned().collect());
    let value = value.filter(|_| shape.as_ref().is_some_and(|s| s.len() == 1));
    Info { shape, value, dtype: parts.first().map(|p| p.dtype).unwrap_or(0) }
}

fn gather(node: &NodeProto, data: &Info, indices: &Info) -> Info {
    let axis = attr_int(node, "axis").unwrap_or(0);
    let shape = data.shape.as_ref().zip(indices.shape.as_ref()).and_then(|(d, i)| {
        let axis = from_end(axis, d.len()) as usize;
        (axis < d.len()).then(|| [&d[..axis], &i[..], &d[axis + 1..]].concat())
    });
    let value = match (data.list(), indices.constants(), &shape) {
        (Some(v), Some(idx), Some(s)) if axis == 0 && s.len() <= 1 => idx
            .iter()
            .map(|&i| {
                let i = from_end(i, v.len());
                v.get(usize::try_from(i).ok()?).cloned()
            })
            .collect(),
        _ => None,
    };
    Info { shape, value, dtype: data.dtype }
}

fn reshape(data: &Info, target: &Info, atoms: &mut Atoms) -> Info {
    let shape = target.list().and_then(|wanted| {
        let numel = |dims: &[Dim]| dims.iter().fold(Dim::known(1), |acc, d| acc.mul(d));
        let mut out: Vec<Dim> = Vec::with_capacity(wanted.len());
        let mut infer_at = None;
        for (i, d) in wanted.iter().enumerate() {
            match d.as_known() {
                Some(0) => out.push(data.shape.as_ref()?.get(i)?.clone()),
                Some(-1) => {
                    infer_at = Some(i);
                    out.push(Dim::known(1));
                }
                _ => out.push(d.clone()),
            }
        }
        if let Some(at) = infer_at {
            let inferred = data.shape.as_ref().and_then(|s| numel(s).div_exact(&numel(&out)));
            out[at] = inferred.unwrap_or_else(|| atoms.fresh());
        }
        Some(out)
    });
    let value = data.value.clone().filter(|_| shape.as_ref().is_some_and(|s| s.len() <= 1));
    Info { shape, value, dtype: data.dtype }
}

fn expand(data: &Info, target: &Info, atoms: &mut Atoms) -> Info {
    let shape = broadcast(data.shape.as_ref(), target.list(), atoms);
    let value = match (data.list(), &shape) {
        (Some(v), Some(s)) if v.len() == 1 => match s.as_slice() {
            [] => Some(v.clone()),
            [n] => n.as_known().map(|n| vec![v[0].clone(); n.max(0) as usize]),
            _ => None,
        },
        _ => None,
    };
    Info { shape, value: value.filter(|v| v.len() <= MAX_VALUE_ELEMENTS), dtype: data.dtype }
}

fn transpose(node: &NodeProto, x: &Info) -> Info {
    let shape = x.shape.as_ref().and_then(|s| {
        let perm = attr_ints(node, "perm").unwrap_or_else(|| (0..s.len() as i64).rev().collect());
        perm.iter().map(|&p| s.get(p as usize).cloned()).collect()
    });
    Info::shaped(shape)
}

/// `Slice` from its five inputs (`axes` and `steps` unknown when absent).
fn slice(x: &Info, starts: &Info, ends: &Info, axes: &Info, steps: &Info, atoms: &mut Atoms) -> Info {
    let Some(shape) = &x.shape else { return Info::default() };
    // Starts and ends may be symbolic (a slice up to a computed length); axes and steps not.
    let (Some(starts), Some(ends)) = (starts.list(), ends.list()) else {
        return Info::shaped(Some(shape.iter().map(|_| atoms.fresh()).collect()));
    };
    let axes = axes.constants().unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.constants().unwrap_or_else(|| vec![1; starts.len()]);
    let mut out = shape.clone();
    let mut picks: Vec<Option<(i64, i64)>> = vec![None; shape.len()];
    for (k, &axis) in axes.iter().enumerate() {
        let axis = from_end(axis, shape.len()) as usize;
        let (Some(start), Some(end), Some(&step)) = (starts.get(k), ends.get(k), steps.get(k)) else {
            return Info::default();
        };
        if axis >= shape.len() || step == 0 {
            return Info::default();
        }
        let dim = &shape[axis];
        out[axis] = match (dim.as_known(), start.as_known(), end.as_known()) {
            (Some(n), Some(start), Some(end)) => {
                let (s, e) = clamp_range(start, end, step, n);
                picks[axis] = Some((s, step));
                Dim::known(slice_len(s, e, step))
            }
            // The whole axis: from 0 to its own length or beyond.
            (_, Some(0), _) if step == 1 && (end == dim || end.as_known().is_some_and(|e| e >= i64::MAX / 2)) => {
                dim.clone()
            }
            _ => atoms.fresh(),
        };
    }
    let value = match (x.list(), &out[..], picks.first()) {
        (Some(v), [n], Some(Some((s, step)))) => {
            let count = n.as_known().unwrap_or(0);
            (0..count).map(|k| v.get((s + k * step) as usize).cloned()).collect()
        }
        (Some(v), [_], Some(None)) => Some(v.clone()),
        _ => None,
    };
    Info { shape: Some(out), value, dtype: x.dtype }
}

/// Elements a slice from `s` towards `e` by `step` takes (after clamping).
fn slice_len(s: i64, e: i64, step: i64) -> i64 {
    if step > 0 {
        (e - s + step - 1).max(0) / step
    } else {
        (s - e - step - 1).max(0) / -step
    }
}

/// Slice's start and end clamped to a dimension of `n` (ONNX semantics).
fn clamp_range(start: i64, end: i64, step: i64, n: i64) -> (i64, i64) {
    let fix = |i: i64| if i < 0 { i.saturating_add(n) } else { i };
    if step > 0 {
        (fix(start).clamp(0, n), fix(end).clamp(0, n))
    } else {
        (fix(start).clamp(0, n - 1), fix(end).clamp(-1, n - 1))
    }
}

fn constant_of_shape(node: &NodeProto, shape_input: &Info) -> Info {
    let shape = shape_input.list().cloned();
    let fill = attr(node, "value").and_then(|a| a.t.as_ref()).map(tensor_info);
    let (fill_value, dtype) = match &fill {
        Some(f) => (f.constants().and_then(|v| v.first().copied()), f.dtype),
        None => (None, DataType::FLOAT as i32),
    };
    let count = shape.as_ref().and_then(|s| s.iter().map(Dim::as_known).product::<Option<i64>>());
    let value = match (fill_value, count) {
        (Some(v), Some(n)) if (n as usize) <= MAX_VALUE_ELEMENTS && shape.as_ref().is_some_and(|s| s.len() <= 1) => {
            Some(vec![Dim::known(v); n as usize])
        }
        _ => None,
    };
    Info { shape, value, dtype }
}

fn range(start: &Info, limit: &Info, delta: &Info, atoms: &mut Atoms) -> Info {
    let first = |i: &Info| i.value.as_ref().and_then(|v| v.first().cloned());
    let len = match (first(start), first(limit), delta.constants().and_then(|d| d.first().copied())) {
        (Some(s), Some(l), Some(1)) if l.sub(&s).never_negative() => l.sub(&s),
        _ => atoms.fresh(),
    };
    Info::shaped(Some(vec![len]))
}

fn matmul(a: &Info, b: &Info, atoms: &mut Atoms) -> Info {
    let shape = a.shape.as_ref().zip(b.shape.as_ref()).and_then(|(x, y)| {
        if x.len() < 2 || y.len() < 2 {
            return None;
        }
        let batch = broadcast(Some(&x[..x.len() - 2].to_vec()), Some(&y[..y.len() - 2].to_vec()), atoms)?;
        Some([batch, vec![x[x.len() - 2].clone(), y[y.len() - 1].clone()]].concat())
    });
    Info::shaped(shape)
}

fn matmul_nbits(node: &NodeProto, a: &Info) -> Info {
    let shape = a.shape.as_ref().zip(attr_int(node, "N")).and_then(|(x, n)| {
        let (last, rest) = x.split_last()?;
        let k_differs = last.as_known().is_some_and(|k| Some(k) != attr_int(node, "K"));
        (!k_differs).then(|| [rest.to_vec(), vec![Dim::known(n)]].concat())
    });
    Info::shaped(shape)
}

fn reduce(node: &NodeProto, x: &Info, axes_input: &Info) -> Info {
    let axes = axes_input.constants().or_else(|| attr_ints(node, "axes"));
    let keep = attr_int(node, "keepdims").unwrap_or(1) != 0;
    let shape = x.shape.as_ref().map(|s| {
        let axes: Vec<usize> = match axes {
            Some(a) if !a.is_empty() => a.iter().map(|&i| from_end(i, s.len()) as usize).collect(),
            _ if attr_int(node, "noop_with_empty_axes").unwrap_or(0) != 0 => return s.clone(),
            _ => (0..s.len()).collect(),
        };
        s.iter()
            .enumerate()
            .filter_map(|(i, d)| match (axes.contains(&i), keep) {
                (false, _) => Some(d.clone()),
                (true, true) => Some(Dim::known(1)),
                (true, false) => None,
            })
            .collect()
    });
    Info::shaped(shape)
}

fn flatten(node: &NodeProto, x: &Info) -> Info {
    let shape = x.shape.as_ref().map(|s| {
        let axis = attr_int(node, "axis").unwrap_or(1);
        let axis = from_end(axis, s.len()).clamp(0, s.len() as i64) as usize;
        let prod = |d: &[Dim]| d.iter().fold(Dim::known(1), |acc, x| acc.mul(x));
        vec![prod(&s[..axis]), prod(&s[axis..])]
    });
    Info::shaped(shape)
}

/// An index or axis counted from the end when negative (the ONNX convention).
fn from_end(i: i64, len: usize) -> i64 {
    if i < 0 {
        i + len as i64
    } else {
        i
    }
}

/// Numpy broadcasting of two shapes; a size that cannot be decided becomes a fresh unknown.
fn broadcast(a: Option<&Vec<Dim>>, b: Option<&Vec<Dim>>, atoms: &mut Atoms) -> Option<Vec<Dim>> {
    let (a, b) = (a?, b?);
    let rank = a.len().max(b.len());
    let at = |s: &Vec<Dim>, i: usize| (i + s.len()).checked_sub(rank).map(|j| s[j].clone()).unwrap_or(Dim::known(1));
    Some(
        (0..rank)
            .map(|i| {
                let (x, y) = (at(a, i), at(b, i));
                if x == y || y.as_known() == Some(1) {
                    x
                } else if x.as_known() == Some(1) {
                    y
                } else {
                    atoms.fresh()
                }
            })
            .collect(),
    )
}

/// Shape and (for small integer tensors stored inline) value of an initializer or constant.
fn tensor_info(t: &TensorProto) -> Info {
    let shape: Vec<Dim> = t.dims.iter().map(|&d| Dim::known(d)).collect();
    let numel: i64 = t.dims.iter().product();
    let external = t.data_location.enum_value() == Ok(DataLocation::EXTERNAL);
    if external || !(0..=MAX_VALUE_ELEMENTS as i64).contains(&numel) || ![INT64, INT32, BOOL].contains(&t.data_type) {
        return Info::shaped(Some(shape));
    }
    let n = numel as usize;
    let values: Option<Vec<i64>> = if !t.raw_data.is_empty() {
        let width = if t.data_type == INT64 {
            8
        } else if t.data_type == INT32 {
            4
        } else {
            1
        };
        (t.raw_data.len() == n * width).then(|| {
            t.raw_data
                .chunks(width)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b[..width].copy_from_slice(c);
                    // Sign-extend narrower integers.
                    let v = i64::from_le_bytes(b);
                    let shift = 64 - 8 * width as u32;
                    (v << shift) >> shift
                })
                .collect()
        })
    } else if t.data_type == INT64 {
        Some(t.int64_data.clone())
    } else {
        Some(t.int32_data.iter().map(|&v| v as i64).collect())
    };
    match values.filter(|v| v.len() == n) {
        Some(v) => Info::valued(shape, v.into_iter().map(Dim::known).collect(), t.data_type),
        None => Info::shaped(Some(shape)),
    }
}

pub(super) fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

pub(super) fn attr_int(node: &NodeProto, name: &str) -> Option<i64> {
    attr(node, name).map(|a| a.i)
}

pub(super) fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}
