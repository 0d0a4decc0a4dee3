"""CLIP checkpoints without torch: the architecture facts, safe readers of every checkpoint format into
numpy, an ONNX graph writer, and the import that turns a checkpoint into a verified model package. The
installed app (no PyTorch) imports checkpoints through this package; the train side builds on it too."""
