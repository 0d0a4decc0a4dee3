"""The model hub: a download client on the standard library (no torch, no huggingface_hub)."""
