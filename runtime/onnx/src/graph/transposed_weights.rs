//! A load-time rewrite: a `MatMul` by a transposed weight reads the weight as stored.
//!
//! A model with tied embeddings (Qwen2.5, Llama-3.2) multiplies by its embedding table through a
//! `Transpose`: Optimum exports the LM head as `MatMul(hidden, Transpose(embed))`. ONNX Runtime
//! folds that constant `Transpose` into a new weight at load, a second copy of the table (545 MB
//! for Qwen2.5-0.5B in fp32) owned by the session: two sessions of one model hold two of them,
//! as sharing (`weights.rs`) reaches initializers, not what ONNX Runtime derives from them, and the
//! load's peak memory carries the copy too. ONNX Runtime's `FusedMatMul` (its `MatMul` with
//! `transB`) multiplies by the table as stored; its CPU kernel packs the weight, transposed, as
//! `MatMul` would, so the pass costs nothing at run time.
//!
//! onnxruntime-genai's model builder ties the other way round: the LM head reads the weight as
//! stored and the embedding lookup is `Gather(Transpose(lm_head), input_ids)`, folded the same
//! way. That lookup becomes `Transpose(Gather(lm_head, input_ids, axis 1))`: the same rows, picked
//! as columns of the stored table (one token's column a decode step), so the table stays one
//! shared initializer.
//!
//! Only float `MatMul`s whose second input, and `Gather`s whose table, is a 2-D `Transpose`
//! (perm `[1, 0]`) of a float initializer are touched (a `Gather` only with indices of known
//! rank); the `Transpose` goes when nothing else reads it.

use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{attribute_proto, AttributeProto, ModelProto, NodeProto, OperatorSetIdProto};

use super::shape_infer::MICROSOFT;

/// Rewrites `model` in place and returns how many products now read their weight as stored, or
/// says why none could.
pub fn apply(model: &mut ModelProto) -> Result<usize, String> {
    let graph = model.graph.as_mut().ok_or("the model has no graph")?;
    let float_2d = |name: &str| {
        graph.initializer.iter().any(|t| t.name == name && t.dims.len() == 2 && t.data_type == DataType::FLOAT as i32)
    };
    // Transposes of a 2-D float initializer: (index, output, the initializer).
    let transposes: Vec<(usize, String, String)> = graph
        .node
        .iter()
        .enumerate()
        .filter(|(_, n)| n.op_type == "Transpose" && n.domain.is_empty() && n.input.len() == 1 && n.output.len() == 1)
        .filter(|(_, n)| float_2d(&n.input[0]))
        .filter(|(_, n)| match n.attribute.iter().find(|a| a.name == "perm") {
            Some(perm) => perm.ints == [1, 0],
            None => true, // the default reverses the axes: [1, 0] in 2-D
        })
        .map(|(i, n)| (i, n.output[0].clone(), n.input[0].clone()))
        .collect();
    let rank = |name: &str| {
        let declared = graph.input.iter().chain(&graph.value_info).find(|v| v.name == name)?;
        let ty = declared.type_.as_ref()?;
        ty.has_tensor_type().then(|| ty.tensor_type().shape.as_ref().map(|s| s.dim.len()))?
    };
    let mut rewritten = 0;
    let mut dropped = Vec::new();
    let mut lookups = Vec::new();
    for (at, transposed, weight) in transposes {
        let mut others = 0;
        for (i, node) in graph.node.iter_mut().enumerate() {
            let reads = node.input.contains(&transposed);
            if !reads || node.output.contains(&transposed) {
                continue;
            }
            let plain = node.domain.is_empty() && node.input.len() == 2;
            if plain && node.op_type == "MatMul" && node.input[1] == transposed && node.input[0] != transposed {
                node.op_type = "FusedMatMul".into();
                node.domain = MICROSOFT.into();
                node.input[1] = weight.clone();
                node.attribute.push(int_attribute("transB", 1));
                rewritten += 1;
            } else if plain
                && node.op_type == "Gather"
                && node.input[0] == transposed
                && node.input[1] != transposed
                && node.attribute.iter().all(|a| a.name != "axis" || a.i == 0)
            {
                match rank(&node.input[1]) {
                    Some(r) => lookups.push((i, weight.clone(), r)),
                    None => others += 1,
                }
            } else {
                others += 1;
            }
        }
        let is_output = graph.output.iter().any(|o| o.name == transposed);
        if others == 0 && !is_output {
            dropped.push(at);
        }
    }
    if rewritten + lookups.len() == 0 {
        return Err("no MatMul or Gather reads a transposed 2-D float initializer".into());
    }
    rewritten += lookups.len();
    // Each lookup becomes two nodes: the Gather by columns, then the Transpose of its result
    // (the gathered axis, first, goes last), inserted after the Gather. From the back, so that
    // earlier indices stay valid.
    let mut edits: Vec<(usize, Option<(String, usize)>)> = dropped.into_iter().map(|at| (at, None)).collect();
    edits.extend(lookups.into_iter().map(|(at, weight, r)| (at, Some((weight, r)))));
    edits.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
    for (at, lookup) in edits {
        match lookup {
            None => {
                graph.node.remove(at);
            }
            Some((weight, indices_rank)) => {
                let gather = &mut graph.node[at];
                let columns = format!("{}/stepwire_columns", gather.output[0]);
                let mut transpose = NodeProto::new();
                transpose.op_type = "Transpose".into();
                transpose.name = format!("{}/stepwire_rows", gather.name);
                transpose.input = vec![columns.clone()];
                transpose.output = vec![std::mem::replace(&mut gather.output[0], columns)];
                let mut perm = AttributeProto::new();
                perm.name = "perm".into();
                perm.type_ = attribute_proto::AttributeType::INTS.into();
                perm.ints = (1..=indices_rank as i64).chain([0]).collect();
                transpose.attribute.push(perm);
                gather.input[0] = weight;
                gather.attribute.retain(|a| a.name != "axis");
                gather.attribute.push(int_attribute("axis", 1));
                graph.node.insert(at + 1, transpose);
            }
        }
    }
    if !model.opset_import.iter().any(|o| o.domain == MICROSOFT) {
        let mut ms = OperatorSetIdProto::new();
        ms.domain = MICROSOFT.into();
        ms.version = 1;
        model.opset_import.push(ms);
    }
    Ok(rewritten)
}

fn int_attribute(name: &str, value: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = attribute_proto::AttributeType::INT.into();
    a.i = value;
    a
}

#[cfg(test)]
mod tests {
    use onnx_protobuf::TensorProto;

    use super::super::test_graph::{model, node, value};
    use super::*;

    fn table(name: &str, data_type: DataType, dims: &[i64]) -> TensorProto {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.dims = dims.to_vec();
        t.data_type = data_type as i32;
        t
    }

    fn with_table(nodes: Vec<NodeProto>, data_type: DataType) -> ModelProto {
        let mut m = model(14, nodes);
        m.graph.as_mut().unwrap().initializer.push(table("embed", data_type, &[100, 8]));
        m
    }

    #[test]
    fn a_tied_lm_head_reads_the_embedding_table_as_stored() {
        let mut m = with_table(
            vec![
                node("Gather", &["embed", "ids"], "h"),
                node("Transpose", &["embed"], "embed_t"),
                node("MatMul", &["h", "embed_t"], "logits"),
            ],
            DataType::FLOAT,
        );
        assert_eq!(apply(&mut m), Ok(1));
        let nodes = &m.graph.as_ref().unwrap().node;
        assert_eq!(nodes.len(), 2, "the Transpose is gone");
        let head = &nodes[1];
        assert_eq!((head.op_type.as_str(), head.domain.as_str()), ("FusedMatMul", MICROSOFT));
        assert_eq!(head.input, vec!["h", "embed"]);
        assert!(head.attribute.iter().any(|a| a.name == "transB" && a.i == 1));
        assert!(m.opset_import.iter().any(|o| o.domain == MICROSOFT && o.version == 1));
    }

    #[test]
    fn a_lookup_in_a_transposed_table_picks_columns_of_the_stored_one() {
        // onnxruntime-genai's builder: the LM head reads `embed` [8, 100] as stored, the lookup
        // reads it transposed.
        let mut m = with_table(
            vec![
                node("Transpose", &["embed"], "embed_t"),
                node("Gather", &["embed_t", "input_ids"], "h"),
                node("MatMul", &["h", "embed"], "logits"),
            ],
            DataType::FLOAT,
        );
        m.graph.as_mut().unwrap().input.push(value("input_ids", &["batch", "seq"]));
        assert_eq!(apply(&mut m), Ok(1));
        let nodes = &m.graph.as_ref().unwrap().node;
        assert_eq!(nodes.iter().map(|n| n.op_type.as_str()).collect::<Vec<_>>(), ["Gather", "Transpose", "MatMul"]);
        assert_eq!(nodes[0].input, vec!["embed", "input_ids"]);
        assert!(nodes[0].attribute.iter().any(|a| a.name == "axis" && a.i == 1));
        assert_eq!(nodes[1].input, nodes[0].output);
        assert_eq!(nodes[1].output, vec!["h"]);
        assert_eq!(nodes[1].attribute[0].ints, vec![1, 2, 0]);
        // Indices of unknown rank: left alone.
        let mut unknown = with_table(
            vec![node("Transpose", &["embed"], "embed_t"), node("Gather", &["embed_t", "ids"], "h")],
            DataType::FLOAT,
        );
        assert!(apply(&mut unknown).is_err());
    }

    #[test]
    fn a_transpose_something_else_reads_stays() {
        let mut m = with_table(
            vec![
                node("Transpose", &["embed"], "embed_t"),
                node("MatMul", &["h", "embed_t"], "logits"),
                node("Relu", &["embed_t"], "other"),
            ],
            DataType::FLOAT,
        );
        assert_eq!(apply(&mut m), Ok(1));
        let nodes = &m.graph.as_ref().unwrap().node;
        assert_eq!(nodes.iter().map(|n| n.op_type.as_str()).collect::<Vec<_>>(), ["Transpose", "FusedMatMul", "Relu"]);
    }

    #[test]
    fn leaves_other_graphs_alone_with_a_reason() {
        // Not float (FusedMatMul's CPU kernel is float only).
        let mut half = with_table(
            vec![node("Transpose", &["embed"], "t"), node("MatMul", &["h", "t"], "logits")],
            DataType::FLOAT16,
        );
        assert!(apply(&mut half).unwrap_err().contains("no MatMul"));
        // A transposed activation, not a weight.
        let mut act =
            with_table(vec![node("Transpose", &["x"], "t"), node("MatMul", &["h", "t"], "logits")], DataType::FLOAT);
        assert!(apply(&mut act).is_err());
        // The weight on the left.
        let mut left = with_table(
            vec![node("Transpose", &["embed"], "t"), node("MatMul", &["t", "h"], "logits")],
            DataType::FLOAT,
        );
        assert!(apply(&mut left).is_err());
        assert_eq!(left.graph.as_ref().unwrap().node.len(), 2, "nothing removed");
    }
}
