"""Make CLIP models: from a named config (random init) or from a state dict alone.

A checkpoint needs no config file: the architecture is read back from its tensor shapes, as in
OpenAI's `build_model`. Only the activation cannot be seen in the weights, so the caller names it.
"""

from __future__ import annotations

from collections.abc import Mapping

from clipdesk.checkpoint.architecture import (
    METADATA_KEYS, ClipConfig, config_from_state_dict, get_config, mismatch,
)
from clipdesk.errors import CheckpointError
from clipdesk.model.clip import CLIP


def build_model(state_dict: Mapping, activation: str = "quick_gelu", *,
                vision_heads: int | None = None, text_heads: int | None = None) -> CLIP:
    """A CLIP in fp32 eval mode holding exactly the given weights (fp16 weights are widened).

    Raises CheckpointError when the state dict is not a complete CLIP of one architecture.
    """
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"not a CLIP checkpoint: expected a state dict, got {type(state_dict).__name__}")
    weights = {k: v for k, v in state_dict.items() if k not in METADATA_KEYS}  # caller's dict untouched
    config = config_from_state_dict(weights, activation, vision_heads=vision_heads, text_heads=text_heads)
    model = CLIP(config)
    problem = mismatch(config, weights)
    if problem:
        kind = "ViT" if config.is_vit else "ResNet"
        raise CheckpointError(f"checkpoint does not match a CLIP {kind}: {problem}")
    model.load_state_dict(weights, strict=True)
    return model.float().eval()


def create_model(config: ClipConfig | str) -> CLIP:
    """A randomly initialised CLIP (OpenAI's init) for training from scratch."""
    return CLIP(get_config(config) if isinstance(config, str) else config)
