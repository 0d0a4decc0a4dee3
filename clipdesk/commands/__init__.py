"""One module per command group. Each has `register(subparsers)` and keeps its imports light:
heavy modules (numpy, ONNX Runtime, and on the train side torch) are imported inside the handlers."""
