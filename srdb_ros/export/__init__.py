"""Model export: ONNX graphs per task and TensorRT engines."""
