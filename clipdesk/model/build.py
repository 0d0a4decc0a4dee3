"""Make CLIP models: from a named config (random init) or from a state dict alone.

A checkpoint needs no config file: the architecture is read back from its tensor shapes, as in
OpenAI's `build_model`. Only the activation cannot be seen in the weights, so the caller names it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from clipdesk.errors import CheckpointError, ClipdeskError
from clipdesk.model.clip import CLIP
from clipdesk.model.config import ClipConfig, get_config

# Plain ints that OpenAI's TorchScript-converted checkpoints hold beside the tensors.
METADATA_KEYS = ("input_resolution", "context_length", "vocab_size")
_SHOWN = 3  # problem keys named in an error message


def _shape(state_dict: Mapping, key: str) -> tuple[int, ...]:
    try:
        return tuple(state_dict[key].shape)
    except KeyError:
        raise CheckpointError(f"not a CLIP checkpoint: key {key!r} is missing") from None
    except AttributeError:
        raise CheckpointError(f"not a CLIP checkpoint: {key!r} is not a tensor") from None


def _block_count(keys, prefix: str) -> int:
    """Blocks under `prefix` (e.g. 'transformer.resblocks.'), counted as highest index + 1 so that a
    missing middle block shows up as missing keys rather than as a shallower model."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    indices = [int(m.group(1)) for m in map(pattern.match, keys) if m]
    return max(indices) + 1 if indices else 0


def _square_root(count: int, key: str) -> int:
    side = round(count ** 0.5)
    if side * side != count:
        raise CheckpointError(f"not a CLIP checkpoint: {key!r} has {count} rows, not a square grid")
    return side


def config_from_state_dict(state_dict: Mapping, activation: str = "quick_gelu", *,
                           vision_heads: int | None = None,
                           text_heads: int | None = None) -> ClipConfig:
    """Read a CLIP architecture from an OpenAI-layout state dict's keys and shapes.

    Head counts are invisible in the weights; like OpenAI we take width / 64 (at least 1) unless
    the caller gives them.
    """
    keys = [k for k in state_dict if k not in METADATA_KEYS]
    vit = any(k.startswith(("visual.transformer.", "visual.class_embedding", "visual.proj"))
              for k in keys)
    if vit:
        vision_width, _, patch, _ = _shape(state_dict, "visual.conv1.weight")
        vision_layers = _block_count(keys, "visual.transformer.resblocks.")
        positions = _shape(state_dict, "visual.positional_embedding")[0]
        grid = _square_root(positions - 1, "visual.positional_embedding")
        resolution = grid * patch
        default_vision_heads = vision_width // 64
    else:
        vision_layers = tuple(_block_count(keys, f"visual.layer{i}.") for i in (1, 2, 3, 4))
        vision_width = _shape(state_dict, "visual.layer1.0.conv1.weight")[0]
        patch = None
        positions = _shape(state_dict, "visual.attnpool.positional_embedding")[0]
        resolution = _square_root(positions - 1, "visual.attnpool.positional_embedding") * 32
        default_vision_heads = vision_width * 32 // 64  # the pool attends over width * 32 channels
    text_width = _shape(state_dict, "ln_final.weight")[0]
    try:
        return ClipConfig(
            embed_dim=_shape(state_dict, "text_projection")[1],
            image_resolution=resolution,
            vision_layers=vision_layers,
            vision_width=vision_width,
            vision_patch_size=patch,
            vision_heads=vision_heads or max(1, default_vision_heads),
            context_length=_shape(state_dict, "positional_embedding")[0],
            vocab_size=_shape(state_dict, "token_embedding.weight")[0],
            text_width=text_width,
            text_heads=text_heads or max(1, text_width // 64),
            text_layers=_block_count(keys, "transformer.resblocks."),
            activation=activation,
        )
    except CheckpointError:
        raise
    except ClipdeskError as error:  # e.g. a width that width / 64 heads do not divide
        raise CheckpointError(f"{error} (architecture read from the checkpoint)") from None


def _mismatch(model: CLIP, state_dict: Mapping) -> str | None:
    """One line naming the first few missing, unexpected and misshapen keys, or None."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    given = {k: tuple(v.shape) if isinstance(v, torch.Tensor) else None for k, v in state_dict.items()}
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    misshapen = [f"{k} {list(given[k]) if given[k] is not None else 'not a tensor'} "
                 f"(expected {list(shape)})"
                 for k, shape in expected.items() if k in given and given[k] != shape]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshapen)):
        if items:
            more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
            parts.append(f"{len(items)} {label}: {', '.join(items[:_SHOWN])}{more}")
    return "; ".join(parts) or None


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
    problem = _mismatch(model, weights)
    if problem:
        kind = "ViT" if config.is_vit else "ResNet"
        raise CheckpointError(f"checkpoint does not match a CLIP {kind}: {problem}")
    model.load_state_dict(weights, strict=True)
    return model.float().eval()


def create_model(config: ClipConfig | str) -> CLIP:
    """A randomly initialised CLIP (OpenAI's init) for training from scratch."""
    return CLIP(get_config(config) if isinstance(config, str) else config)
