"""Model optimization: ONNX export, quantization, parity and measurement (`mlci optimize`)."""
