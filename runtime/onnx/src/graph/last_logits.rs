//! A load-time rewrite of the decoder graph so that `logits` covers the last position only.
//!
//! An Optimum export computes the LM head for every input position, but generation reads only
//! the last one. On a prefill of n tokens that is n - 1 wasted `hidden x vocab` products and an
//! `n x vocab` output (on the tiny fixtures, about a quarter of the prefill time; on a large
//! vocabulary, also megabytes of logits). The rewrite slices the hidden states to the last
//! position right before the LM head's `MatMul`, so `logits` becomes `[batch, 1, vocab]`.
//!
//! Only the pattern is touched: the `MatMul` (or quantised `MatMulNBits`) that `logits` comes from, possibly through
//! element-wise ops (Gemma's soft-capping divides, applies tanh and multiplies). A graph that
//! does not match is left as it is, and the decoder reads the last row of the full logits.

use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{GraphProto, ModelProto, NodeProto, TensorProto};

use super::shape_infer::MICROSOFT;

/// Ops that keep the position axis as it is, between the LM head and `logits`.
const ELEMENTWISE: &[&str] = &["Div", "Mul", "Tanh", "Add", "Sub", "Cast", "Identity"];

/// Names of what the rewrite adds (unlikely to collide with an export's own names).
const SLICED: &str = "stepwire/last_position/hidden";
const STARTS: &str = "stepwire/last_position/starts";
const ENDS: &str = "stepwire/last_position/ends";
const AXES: &str = "stepwire/last_position/axes";

/// Rewrites `model` in place, or says why the graph was left as it is.
pub fn apply(model: &mut ModelProto) -> Result<(), String> {
    // Slice with inputs (not attributes) needs opset 10 of the default domain.
    let opset = model.opset_import.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx").map(|o| o.version);
    if opset.unwrap_or(0) < 10 {
        return Err(format!("opset {opset:?} is older than 10"));
    }
    let graph = model.graph.as_mut().ok_or("the model has no graph")?;
    let head = lm_head(graph)?;
    let hidden = graph.node[head].input[0].clone();

    let mut slice = NodeProto::new();
    slice.op_type = "Slice".into();
    slice.name = "stepwire/last_position/Slice".into();
    slice.input = vec![hidden, STARTS.into(), ENDS.into(), AXES.into()];
    slice.output = vec![SLICED.into()];
    graph.node[head].input[0] = SLICED.into();
    graph.node.insert(head, slice);
    for (name, value) in [(STARTS, -1), (ENDS, i64::MAX), (AXES, 1)] {
        graph.initializer.push(int64_scalar_list(name, value));
    }
    // The declared shape follows: [batch, 1, vocab].
    let declared = graph.output.iter_mut().find(|o| o.name == "logits").and_then(|o| o.type_.as_mut());
    if let Some(ty) = declared.filter(|t| t.has_tensor_type()) {
        if let Some(dim) = ty.mut_tensor_type().shape.as_mut().and_then(|s| s.dim.get_mut(1)) {
            dim.set_dim_value(1);
        }
    }
    Ok(())
}

/// Index of the `MatMul` whose output becomes `logits`.
fn lm_head(graph: &GraphProto) -> Result<usize, String> {
    let producer = |name: &str| graph.node.iter().position(|n| n.output.iter().any(|o| o == name));
    let mut at = producer("logits").ok_or("no node produces `logits`")?;
    for _ in 0..8 {
        let node = &graph.node[at];
        match node.op_type.as_str() {
            "MatMul" if node.domain.is_empty() && node.input.len() == 2 => return Ok(at),
            // A quantised LM head (int4/int8 weights): the activation is its first input too.
            "MatMulNBits" if node.domain == MICROSOFT => return Ok(at),
            op if ELEMENTWISE.contains(&op) && node.domain.is_empty() => {
                // Follow the operand that is computed (the other is a constant).
                at = node
                    .input
                    .iter()
                    .filter_map(|i| producer(i))
                    .find(|&p| graph.node[p].op_type != "Constant")
                    .ok_or_else(|| format!("`{}` before `logits` has no computed input", node.op_type))?;
            }
            op => return Err(format!("`logits` comes from `{op}`, not a MatMul")),
        }
    }
    Err("no MatMul within 8 nodes of `logits`".into())
}

/// A one-element int64 tensor.
fn int64_scalar_list(name: &str, value: i64) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = vec![1];
    t.data_type = DataType::INT64 as i32;
    t.int64_data = vec![value];
    t
}

#[cfg(test)]
mod tests {
    use super::super::test_graph::{model, node};
    use super::*;

    /// The rewritten nodes, or why there are none.
    fn rewrite(mut m: ModelProto) -> Result<Vec<NodeProto>, String> {
        apply(&mut m)?;
        Ok(m.graph.unwrap().node)
    }

    #[test]
    fn slices_the_hidden_states_before_the_lm_head() {
        let m =
            model(14, vec![node("SimplifiedLayerNormalization", &["h0"], "h"), node("MatMul", &["h", "w"], "logits")]);
        let out = rewrite(m).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[1].op_type, "Slice");
        assert_eq!(out[1].input, vec!["h", STARTS, ENDS, AXES]);
        assert_eq!(out[2].input, vec![SLICED, "w"]);
    }

    #[test]
    fn follows_soft_capping_back_to_the_matmul() {
        let m = model(
            14,
            vec![
                node("MatMul", &["h", "w"], "raw"),
                node("Div", &["raw", "cap"], "d"),
                node("Tanh", &["d"], "t"),
                node("Mul", &["t", "cap"], "logits"),
            ],
        );
        let out = rewrite(m).unwrap();
        assert_eq!(out[0].op_type, "Slice");
        assert_eq!(out[1].input[0], SLICED);
    }

    #[test]
    fn leaves_other_graphs_alone_with_a_reason() {
        let gather = model(14, vec![node("Gather", &["h", "i"], "logits")]);
        assert!(rewrite(gather).unwrap_err().contains("Gather"));
        let old = model(9, vec![node("MatMul", &["h", "w"], "logits")]);
        assert!(rewrite(old).unwrap_err().contains("older than 10"));
        let none = model(14, vec![node("MatMul", &["h", "w"], "scores")]);
        assert!(rewrite(none).unwrap_err().contains("no node produces"));
    }
}
