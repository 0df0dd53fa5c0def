//! ONNX Runtime policies for stepwire.
