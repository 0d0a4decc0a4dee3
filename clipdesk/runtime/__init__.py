"""The run side's model layer: model packages, ONNX Runtime encoders, tokenizer, preprocessing. No torch."""
