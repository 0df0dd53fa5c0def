//! Load-time rewrites of the decoder graph. Each pass changes what the graph costs, never what it
//! computes, and a pass that does not apply leaves the graph as it is.
//!
//! * [`last_logits`]: the LM head runs for the last position only.
//! * [`shape_fold`]: the export's run-time shape arithmetic becomes constants where it provably is.
//! * [`transposed_weights`]: a product by a transposed weight (a tied LM head) reads the weight as
//!   stored, so ONNX Runtime makes no second, unshared copy of it.

pub mod last_logits;
pub mod shape_fold;
mod shape_infer;
mod symbolic;
pub mod transposed_weights;

use onnx_protobuf::{Message, ModelProto};
use tracing::debug;

/// The rewritten model and what was done to it.
pub struct Rewritten {
    pub bytes: Vec<u8>,
    /// Whether `logits` covers the last position only.
    pub last_position_logits: bool,
    /// What shape folding did, if it ran.
    pub shape_fold: Option<shape_fold::Report>,
}

/// Applies every pass to the serialised model; `Err` only when it cannot be parsed or written.
pub fn rewrite(model_bytes: &[u8]) -> Result<Rewritten, String> {
    let mut model = ModelProto::parse_from_bytes(model_bytes).map_err(|e| format!("cannot parse the model: {e}"))?;
    let last_position_logits = match last_logits::apply(&mut model) {
        Ok(()) => true,
        Err(why) => {
            debug!("logits stay per position: {why}");
            false
        }
    };
    let shape_fold = match shape_fold::fold(&mut model) {
        Ok(report) => Some(report),
        Err(why) => {
            debug!("shape arithmetic not folded: {why}");
            None
        }
    };
    // Last: shape inference (shape_fold) knows the standard MatMul, not FusedMatMul.
    match transposed_weights::apply(&mut model) {
        Ok(n) => debug!("{n} products read their transposed weight as stored"),
        Err(why) => debug!("no transposed weight rewritten: {why}"),
    }
    let bytes = model.write_to_bytes().map_err(|e| format!("cannot write the rewritten model: {e}"))?;
    Ok(Rewritten { bytes, last_position_logits, shape_fold })
}

/// Small graphs for the passes' unit tests.
#[cfg(test)]
pub(crate) mod test_graph {
    use onnx_protobuf::{
        tensor_shape_proto, type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
        TensorShapeProto, TypeProto, ValueInfoProto,
    };

    pub fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = vec![output.into()];
        n
    }

    /// A float graph input or output; a dimension is a number or a symbolic name.
    pub fn value(name: &str, dims: &[&str]) -> ValueInfoProto {
        let mut shape = TensorShapeProto::new();
        for d in dims {
            let mut dim = tensor_shape_proto::Dimension::new();
            match d.parse::<i64>() {
                Ok(v) => dim.set_dim_value(v),
                Err(_) => dim.set_dim_param(d.to_string()),
            }
            shape.dim.push(dim);
        }
        let mut tensor = type_proto::Tensor::new();
        tensor.elem_type = 1;
        tensor.shape = Some(shape).into();
        let mut ty = TypeProto::new();
        ty.set_tensor_type(tensor);
        let mut v = ValueInfoProto::new();
        v.name = name.into();
        v.type_ = Some(ty).into();
        v
    }

    /// A one-dimensional int64 initializer.
    pub fn ints(name: &str, values: &[i64]) -> TensorProto {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.dims = vec![values.len() as i64];
        t.data_type = 7;
        t.int64_data = values.to_vec();
        t
    }

    pub fn model(opset: i64, nodes: Vec<NodeProto>) -> ModelProto {
        let mut m = ModelProto::new();
        let mut o = OperatorSetIdProto::new();
        o.version = opset;
        m.opset_import.push(o);
        let mut g = GraphProto::new();
        g.node = nodes;
        m.graph = Some(g).into();
        m
    }
}
