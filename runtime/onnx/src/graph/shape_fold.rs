//! Load-time folding of the shape arithmetic that an export leaves in the graph.
//!
//! A PyTorch export computes every `view`/`expand` size at run time: `Shape`, `Gather`,
//! `Unsqueeze`, `Concat` and arithmetic, dozens of tiny nodes per layer. On a decode step (one
//! token) those nodes cost ONNX Runtime more than the matrix products, and ONNX Runtime cannot fold
//! them itself because the sizes are symbolic (`batch_size`, `past_sequence_length`).
//!
//! This pass infers every tensor's shape as polynomials over the declared symbolic sizes, and the
//! values of small integer tensors (the shape vectors). Then:
//! * a node whose outputs are fully known constants becomes initializers;
//! * a `Reshape` target whose unknown entries are provably the input's own size at that position
//!   becomes a constant with `0` (copy) and at most one `-1` (infer);
//! * an `Expand` target whose unknown entries are provably the input's size becomes a constant
//!   with `1` (keep);
//! * a `Reshape`, `Expand` or `Slice` that provably changes nothing is read through, and a chain
//!   of `Unsqueeze` becomes one;
//! * nodes nothing reads any more are dropped.
//!
//! Everything it cannot prove is left as it is, so the graph computes exactly what it did.

use std::collections::{HashMap, HashSet};

use onnx_protobuf::{GraphProto, ModelProto, NodeProto, TensorProto};

use super::shape_infer::{attr_int, infer, Info, BOOL, INT32, INT64};
use super::symbolic::Dim;

/// Prefix of the initializers this pass adds.
const NAME_PREFIX: &str = "stepwire/shape_fold/";

/// What the pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub nodes_before: usize,
    pub nodes_after: usize,
    /// Nodes replaced by constants.
    pub folded: usize,
    /// `Reshape`/`Expand` targets made constant.
    pub targets: usize,
    /// `Reshape`/`Expand`/`Slice` nodes that provably change nothing, read through.
    pub noops: usize,
    /// `Unsqueeze` chains merged into one.
    pub merged: usize,
}

/// Folds `model`'s shape arithmetic in place.
pub fn fold(model: &mut ModelProto) -> Result<Report, String> {
    let graph = model.graph.as_mut().ok_or("the model has no graph")?;
    if graph.node.iter().any(|n| n.attribute.iter().any(|a| a.g.is_some() || !a.graphs.is_empty())) {
        return Err("the graph has control flow (subgraphs)".into());
    }
    let nodes_before = graph.node.len();
    let infos = infer(graph);
    let outputs: HashSet<String> = graph.output.iter().map(|o| o.name.clone()).collect();

    let (mut folded, mut targets) = (0, 0);
    let mut dead = vec![false; graph.node.len()];
    let mut added = Vec::new();
    let mut renamed: HashMap<String, String> = HashMap::new();
    for (index, node) in graph.node.iter_mut().enumerate() {
        if node.op_type == "Constant" || !node.domain.is_empty() {
            continue;
        }
        if let Some(tensors) = constant_outputs(node, &infos, &outputs) {
            added.extend(tensors);
            dead[index] = true;
            folded += 1;
            continue;
        }
        let target = match node.op_type.as_str() {
            "Reshape" if attr_int(node, "allowzero").unwrap_or(0) == 0 => reshape_target(node, &infos),
            "Expand" => expand_target(node, &infos),
            _ => None,
        };
        if let Some(target) = target {
            let name = format!("{NAME_PREFIX}{}", added.len());
            added.push(int64_tensor(&name, &[target.len() as i64], &target));
            node.input[1] = name;
            targets += 1;
        }
        if is_noop(node, &infos) && !outputs.contains(&node.output[0]) {
            renamed.insert(node.output[0].clone(), node.input[0].clone());
        }
    }
    keep_nodes(graph, |i| !dead[i]);
    let noops = renamed.len();
    read_through(graph, &renamed);
    let merged = merge_unsqueezes(graph, &infos, &mut added);
    graph.initializer.extend(added);
    drop_unread(graph);
    Ok(Report { nodes_before, nodes_after: graph.node.len(), folded, targets, noops, merged })
}

/// Whether `node` provably returns its first input unchanged: a `Reshape` or `Expand` to the
/// input's own shape, or a `Slice` that keeps every element.
fn is_noop(node: &NodeProto, infos: &HashMap<String, Info>) -> bool {
    let shape = |name: Option<&String>| name.and_then(|n| infos.get(n)).and_then(|i| i.shape.as_ref());
    let same = shape(node.input.first()).is_some_and(|s| Some(s) == shape(node.output.first()));
    match node.op_type.as_str() {
        "Reshape" | "Expand" => same,
        "Slice" => {
            let steps = node.input.get(4).filter(|n| !n.is_empty()).map(|n| infos.get(n).and_then(Info::constants));
            same && steps.is_none_or(|s| s.is_some_and(|s| s.iter().all(|&v| v == 1)))
        }
        _ => false,
    }
}

/// Makes every node read `to` where it read `from`, for each `from -> to` in `renamed`.
fn read_through(graph: &mut GraphProto, renamed: &HashMap<String, String>) {
    let resolve = |name: &String| {
        let mut name = name.clone();
        while let Some(next) = renamed.get(&name) {
            name = next.clone();
        }
        name
    };
    for node in &mut graph.node {
        for input in &mut node.input {
            if renamed.contains_key(input) {
                *input = resolve(input);
            }
        }
    }
}

/// Turns chains of `Unsqueeze` (the export's `x[None, None, :, None]`) into one `Unsqueeze`.
/// Returns how many were merged.
fn merge_unsqueezes(graph: &mut GraphProto, infos: &HashMap<String, Info>, added: &mut Vec<TensorProto>) -> usize {
    let mut readers: HashMap<String, usize> = HashMap::new();
    for name in graph.node.iter().flat_map(|n| &n.input).chain(graph.output.iter().map(|o| &o.name)) {
        *readers.entry(name.clone()).or_default() += 1;
    }
    // Axes of every Unsqueeze, as they stand after earlier merges.
    let axes_of = |node: &NodeProto, added: &Vec<TensorProto>| -> Option<Vec<i64>> {
        let name = node.input.get(1)?;
        match added.iter().find(|t| &t.name == name) {
            Some(t) => Some(t.int64_data.clone()),
            None => infos.get(name)?.constants(),
        }
    };
    let mut merged = 0;
    for j in 0..graph.node.len() {
        let node = &graph.node[j];
        if node.op_type != "Unsqueeze" || node.input.len() != 2 {
            continue;
        }
        let Some(i) = graph.node[..j].iter().rposition(|n| n.output.first() == node.input.first()) else { continue };
        let inner = &graph.node[i];
        let single_reader = readers.get(&inner.output[0]) == Some(&1);
        if inner.op_type != "Unsqueeze" || inner.input.len() != 2 || !single_reader {
            continue;
        }
        let Some(rank) = infos.get(&inner.input[0]).and_then(|i| i.shape.as_ref()).map(Vec::len) else { continue };
        let (Some(first), Some(second)) = (axes_of(inner, added), axes_of(node, added)) else { continue };
        let Some(axes) = combined_axes(rank, &first, &second) else { continue };
        let (source, name) = (inner.input[0].clone(), format!("{NAME_PREFIX}{}", added.len()));
        added.push(int64_tensor(&name, &[axes.len() as i64], &axes));
        graph.node[j].input = vec![source, name];
        merged += 1;
    }
    merged
}

/// The axes of one `Unsqueeze` doing what `first` then `second` do to a tensor of `rank`.
fn combined_axes(rank: usize, first: &[i64], second: &[i64]) -> Option<Vec<i64>> {
    // Track which positions of the result are inserted ones.
    let mut inserted = vec![false; rank];
    for axes in [first, second] {
        let out_rank = (inserted.len() + axes.len()) as i64;
        let mut norm: Vec<i64> = axes.iter().map(|&a| if a < 0 { a + out_rank } else { a }).collect();
        norm.sort_unstable();
        for a in norm {
            if a < 0 || a as usize > inserted.len() {
                return None;
            }
            inserted.insert(a as usize, true);
        }
    }
    Some(inserted.iter().enumerate().filter(|(_, &new)| new).map(|(i, _)| i as i64).collect())
}

/// Initializers for every output of `node`, when all of them are known constants.
fn constant_outputs(
    node: &NodeProto,
    infos: &HashMap<String, Info>,
    outputs: &HashSet<String>,
) -> Option<Vec<TensorProto>> {
    if node.output.is_empty() {
        return None;
    }
    node.output
        .iter()
        .map(|name| {
            if outputs.contains(name) {
                return None;
            }
            let info = infos.get(name)?;
            let shape: Vec<i64> = info.shape.as_ref()?.iter().map(Dim::as_known).collect::<Option<_>>()?;
            let values = info.constants()?;
            match info.dtype {
                INT64 => Some(int64_tensor(name, &shape, &values)),
                INT32 | BOOL => {
                    let mut t = int64_tensor(name, &shape, &[]);
                    t.data_type = info.dtype;
                    t.int32_data = values.iter().map(|&v| v as i32).collect();
                    Some(t)
                }
                _ => None,
            }
        })
        .collect()
}

/// The input's shape and the target sizes of a `Reshape` or `Expand` whose target is computed and
/// not already constant.
fn symbolic_target<'a>(node: &NodeProto, infos: &'a HashMap<String, Info>) -> Option<(&'a Vec<Dim>, &'a Vec<Dim>)> {
    let data = infos.get(node.input.first()?)?.shape.as_ref()?;
    let target = infos.get(node.input.get(1)?)?;
    if target.constants().is_some() {
        return None;
    }
    Some((data, target.list()?))
}

/// A constant `Reshape` target: `0` where the size is the input's own at that position, `-1`
/// for at most one other unknown size.
fn reshape_target(node: &NodeProto, infos: &HashMap<String, Info>) -> Option<Vec<i64>> {
    let (data, wanted) = symbolic_target(node, infos)?;
    let mut inferred = wanted.iter().any(|d| d.as_known() == Some(-1));
    wanted
        .iter()
        .enumerate()
        .map(|(i, d)| match d.as_known() {
            Some(c) => Some(c),
            None if data.get(i) == Some(d) => Some(0),
            None if !inferred => {
                inferred = true;
                Some(-1)
            }
            None => None,
        })
        .collect()
}

/// A constant `Expand` target: `1` (keep) where the size is the input's own, right-aligned.
fn expand_target(node: &NodeProto, infos: &HashMap<String, Info>) -> Option<Vec<i64>> {
    let (data, wanted) = symbolic_target(node, infos)?;
    let offset = data.len() as isize - wanted.len() as isize;
    wanted
        .iter()
        .enumerate()
        .map(|(i, d)| match d.as_known() {
            Some(c) => Some(c),
            None => {
                let j = i as isize + offset;
                (j >= 0 && data.get(j as usize) == Some(d)).then_some(1)
            }
        })
        .collect()
}

/// Keeps the nodes whose index (before any removal) passes `keep`.
fn keep_nodes(graph: &mut GraphProto, keep: impl Fn(usize) -> bool) {
    let mut index = 0;
    graph.node.retain(|_| {
        index += 1;
        keep(index - 1)
    });
}

/// Drops nodes, initializers and value infos that nothing reads any more.
fn drop_unread(graph: &mut GraphProto) {
    let mut read: HashSet<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let mut keep = vec![false; graph.node.len()];
    for (i, node) in graph.node.iter().enumerate().rev() {
        if node.output.iter().any(|o| read.contains(o)) {
            keep[i] = true;
            read.extend(node.input.iter().filter(|n| !n.is_empty()).cloned());
        }
    }
    keep_nodes(graph, |i| keep[i]);
    let declared: HashSet<String> = graph.input.iter().map(|i| i.name.clone()).collect();
    graph.initializer.retain(|t| read.contains(&t.name) || declared.contains(&t.name));
    let produced: HashSet<&String> = graph.node.iter().flat_map(|n| &n.output).collect();
    graph.value_info.retain(|v| produced.contains(&v.name));
}

fn int64_tensor(name: &str, dims: &[i64], values: &[i64]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = dims.to_vec();
    t.data_type = INT64;
    t.int64_data = values.to_vec();
    t
}

#[cfg(test)]
mod tests {
    use onnx_protobuf::attribute_proto::AttributeType;
    use onnx_protobuf::AttributeProto;

    use super::super::test_graph::{ints, model, node, value};
    use super::*;

    /// A model with symbolic `inputs`, `outputs`, int64 `constants` (a name starting with `s_` is
    /// a scalar) and `nodes`.
    fn graph(
        inputs: &[(&str, &[&str])],
        outputs: &[&str],
        constants: &[(&str, &[i64])],
        nodes: Vec<NodeProto>,
    ) -> ModelProto {
        let mut m = model(18, nodes);
        let g = m.graph.as_mut().unwrap();
        g.input = inputs.iter().map(|(n, d)| value(n, d)).collect();
        g.output = outputs.iter().map(|n| value(n, &[])).collect();
        g.initializer = constants
            .iter()
            .map(|(n, v)| {
                let mut t = ints(n, v);
                if n.starts_with("s_") {
                    t.dims.clear();
                }
                t
            })
            .collect();
        m
    }

    fn with_int(mut n: NodeProto, name: &str, v: i64) -> NodeProto {
        let mut a = AttributeProto::new();
        a.name = name.into();
        a.type_ = AttributeType::INT.into();
        a.i = v;
        n.attribute.push(a);
        n
    }

    fn ops(m: &ModelProto) -> Vec<&str> {
        m.graph.node.iter().map(|n| n.op_type.as_str()).collect()
    }

    fn values_of(m: &ModelProto, name: &str) -> Vec<i64> {
        m.graph.initializer.iter().find(|t| t.name == name).map(|t| t.int64_data.clone()).unwrap_or_default()
    }

    /// `Shape(x)[i]` as a one-element vector, the export's way.
    fn dim_of(x: &str, index: &str, out: &str) -> Vec<NodeProto> {
        vec![
            node("Shape", &[x], &format!("{out}_shape")),
            node("Gather", &[&format!("{out}_shape"), index], &format!("{out}_scalar")),
            node("Unsqueeze", &[&format!("{out}_scalar"), "axes0"], out),
        ]
    }

    #[test]
    fn a_reshape_to_computed_sizes_gets_a_constant_target() {
        let mut nodes = [dim_of("x", "s_0", "d0"), dim_of("x", "s_1", "d1")].concat();
        nodes.push(with_int(node("Concat", &["d0", "d1", "tail"], "target"), "axis", 0));
        nodes.push(node("Reshape", &["x", "target"], "y"));
        let mut m = graph(
            &[("x", &["batch", "seq", "64"])],
            &["y"],
            &[("s_0", &[0]), ("s_1", &[1]), ("axes0", &[0]), ("tail", &[2, 32])],
            nodes,
        );
        let report = fold(&mut m).unwrap();
        assert_eq!(ops(&m), ["Reshape"]);
        assert_eq!(values_of(&m, &m.graph.node[0].input[1]), [0, 0, 2, 32]);
        assert_eq!((report.nodes_before, report.nodes_after, report.targets), (8, 1, 1));
        // Only what is still read stays.
        assert_eq!(m.graph.initializer.len(), 1);
    }

    #[test]
    fn an_expand_keeps_the_inputs_own_sizes_with_ones() {
        let mut nodes = [dim_of("x", "s_0", "d0"), dim_of("x", "s_2", "d2")].concat();
        nodes.push(with_int(node("Concat", &["d0", "four", "d2"], "target"), "axis", 0));
        nodes.push(node("Expand", &["x", "target"], "y"));
        let mut m = graph(
            &[("x", &["batch", "1", "total"])],
            &["y"],
            &[("s_0", &[0]), ("s_2", &[2]), ("axes0", &[0]), ("four", &[4])],
            nodes,
        );
        fold(&mut m).unwrap();
        assert_eq!(ops(&m), ["Expand"]);
        assert_eq!(values_of(&m, &m.graph.node[0].input[1]), [1, 4, 1]);
    }

    #[test]
    fn a_slice_of_everything_is_read_through_and_unsqueeze_chains_merge() {
        // The mask slice `mask[:, :, :, :key_len]`, where key_len is the mask's own length; the
        // end comes from another tensor whose size is the same sum of symbols.
        let mut nodes = vec![with_int(node("Concat", &["past", "new"], "keys"), "axis", 1)];
        nodes.extend(dim_of("keys", "s_1", "len"));
        nodes.push(node("Slice", &["mask", "zero", "len", "one"], "sliced"));
        nodes.push(node("Neg", &["sliced"], "n"));
        nodes.push(node("Unsqueeze", &["n", "axes0"], "u1"));
        nodes.push(node("Unsqueeze", &["u1", "axes3"], "y"));
        let mut m = graph(
            &[("mask", &["batch", "past + seq"]), ("past", &["batch", "past"]), ("new", &["batch", "seq"])],
            &["y"],
            &[("s_1", &[1]), ("axes0", &[0]), ("axes3", &[3]), ("zero", &[0]), ("one", &[1])],
            nodes,
        );
        let report = fold(&mut m).unwrap();
        assert_eq!(ops(&m), ["Neg", "Unsqueeze"]);
        assert_eq!(m.graph.node[0].input, ["mask"]);
        assert_eq!(m.graph.node[1].input[0], "n");
        assert_eq!(values_of(&m, &m.graph.node[1].input[1]), [0, 3]);
        assert_eq!((report.noops, report.merged), (1, 1));
    }

    #[test]
    fn what_cannot_be_proved_is_left_alone() {
        // Two sizes that are not the input's own at their position: only one can be -1.
        let mut nodes = [dim_of("x", "s_1", "d1"), dim_of("x", "s_0", "d0")].concat();
        nodes.push(with_int(node("Concat", &["d1", "d0"], "swapped"), "axis", 0));
        nodes.push(node("Reshape", &["x", "swapped"], "y"));
        // A size from an op the pass does not know.
        let mut custom = node("Mystery", &["x"], "sizes");
        custom.domain = "com.example".into();
        nodes.push(custom);
        nodes.push(node("Reshape", &["x", "sizes"], "z"));
        // A shape that is itself an output.
        nodes.push(node("Shape", &["x"], "shape_out"));
        let mut m = graph(
            &[("x", &["batch", "seq"])],
            &["y", "z", "shape_out"],
            &[("s_0", &[0]), ("s_1", &[1]), ("axes0", &[0])],
            nodes,
        );
        let before = m.graph.node.len();
        let report = fold(&mut m).unwrap();
        assert_eq!(m.graph.node.len(), before);
        assert_eq!((report.folded, report.targets, report.noops), (0, 0, 0));
    }

    #[test]
    fn a_value_of_unknown_length_is_not_used() {
        // `[5]` expanded to `batch` elements, then a size appended: a target of unknown length.
        let mut nodes = [dim_of("x", "s_0", "batch_len"), dim_of("x", "s_1", "d1")].concat();
        nodes.push(node("Expand", &["five", "batch_len"], "fives"));
        nodes.push(with_int(node("Concat", &["fives", "d1"], "target"), "axis", 0));
        nodes.push(node("Reshape", &["w", "target"], "y"));
        let mut m = graph(
            &[("x", &["batch", "seq"]), ("w", &["batch", "seq"])],
            &["y"],
            &[("s_0", &[0]), ("s_1", &[1]), ("axes0", &[0]), ("five", &[5])],
            nodes,
        );
        let report = fold(&mut m).unwrap();
        assert_eq!(report.targets, 0);
        assert!(ops(&m).contains(&"Expand"));
    }

    #[test]
    fn graphs_with_control_flow_are_not_touched() {
        let mut m = graph(&[("x", &["n"])], &["y"], &[], vec![node("If", &["x"], "y")]);
        let mut branch = AttributeProto::new();
        branch.name = "then_branch".into();
        branch.g = Some(GraphProto::new()).into();
        m.graph.as_mut().unwrap().node[0].attribute.push(branch);
        assert!(fold(&mut m).unwrap_err().contains("control flow"));
    }

    #[test]
    fn unsqueeze_axes_combine() {
        assert_eq!(combined_axes(2, &[0], &[3]), Some(vec![0, 3]));
        assert_eq!(combined_axes(1, &[0], &[2]), Some(vec![0, 2]));
        assert_eq!(combined_axes(1, &[0], &[0]), Some(vec![0, 1]));
        assert_eq!(combined_axes(2, &[-1], &[0]), Some(vec![0, 3]));
        assert_eq!(combined_axes(1, &[0], &[5]), None);
    }
}
