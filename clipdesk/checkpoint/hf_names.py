"""Hugging Face `transformers` CLIPModel weights → OpenAI-layout state dict.

Pure array/dict work on numpy arrays: no file access, no torch and no `transformers` import. reader.py
reads the files (config.json, safetensors or a PyTorch zip checkpoint) and calls `convert_hf_clip`.

Name mapping (HF → OpenAI), per tower (`text_model.` → text, `vision_model.` → `visual.`):

    embeddings.token_embedding.weight       → token_embedding.weight
    embeddings.position_embedding.weight    → positional_embedding          (text)
                                            → visual.positional_embedding   (vision)
    embeddings.class_embedding              → visual.class_embedding
    embeddings.patch_embedding.weight       → visual.conv1.weight
    embeddings.position_ids                 dropped (a derived buffer)
    pre_layrnorm / post_layernorm           → visual.ln_pre / visual.ln_post
    final_layer_norm                        → ln_final
    encoder.layers.N.self_attn.{q,k,v}_proj → resblocks.N.attn.in_proj_{weight,bias} (q, k, v stacked)
    encoder.layers.N.self_attn.out_proj     → resblocks.N.attn.out_proj
    encoder.layers.N.layer_norm1 / 2        → resblocks.N.ln_1 / ln_2
    encoder.layers.N.mlp.fc1 / fc2          → resblocks.N.mlp.c_fc / c_proj
    visual_projection.weight                → visual.proj      (transposed)
    text_projection.weight                  → text_projection  (transposed)
    logit_scale                             → logit_scale      (both store log of the temperature)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

# Activations clipdesk's CLIP implements; HF's "quick_gelu" is x * sigmoid(1.702 x) and "gelu" the
# exact erf GELU, the same functions as OpenAI's QuickGELU and torch.nn.GELU().
SUPPORTED_ACTIVATIONS = ("quick_gelu", "gelu")
OPENAI_LAYER_NORM_EPS = 1e-5

# CLIPTextConfig / CLIPVisionConfig defaults, used where an older config.json leaves a field out.
_TEXT_DEFAULTS = {"hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "num_attention_heads": 8}
_VISION_DEFAULTS = {"hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "num_attention_heads": 12}

_SHOWN = 3


class ConversionError(ValueError):
    """HF weights or config that cannot become an OpenAI-layout CLIP (message: one line, no path)."""


@dataclass
class ConvertedClip:
    state_dict: dict[str, np.ndarray]  # OpenAI names, dtypes as given
    activation: str  # "quick_gelu" or "gelu"
    vision_heads: int
    text_heads: int


def is_hf_clip_state_dict(keys) -> bool:
    """True when the keys look like a transformers CLIP model (either tower)."""
    return any(k.startswith(("text_model.", "vision_model.")) for k in keys)


def _sections(config: Mapping) -> tuple[dict, dict]:
    model_type = config.get("model_type")
    if model_type not in (None, "clip"):
        raise ConversionError(
            f"is a Hugging Face {model_type!r} model; only CLIP (model_type 'clip', CLIPModel) is supported"
        )
    text = config.get("text_config") or config.get("text_config_dict") or {}
    vision = config.get("vision_config") or config.get("vision_config_dict") or {}
    if not isinstance(text, Mapping) or not isinstance(vision, Mapping):
        raise ConversionError("config.json text_config / vision_config are not objects")
    return {**_TEXT_DEFAULTS, **text}, {**_VISION_DEFAULTS, **vision}


def activation_from_config(config: Mapping) -> str:
    """The one activation both towers use ('quick_gelu' or 'gelu'); refuses anything else."""
    text, vision = _sections(config)
    text_act, vision_act = text["hidden_act"], vision["hidden_act"]
    for tower, act in (("text", text_act), ("vision", vision_act)):
        if act not in SUPPORTED_ACTIVATIONS:
            raise ConversionError(
                f"{tower}_config.hidden_act {act!r} is not supported (only {' or '.join(SUPPORTED_ACTIVATIONS)})"
            )
    if text_act != vision_act:
        raise ConversionError(
            f"text and vision towers use different activations ({text_act} / {vision_act}); "
            "clipdesk's CLIP uses one for both"
        )
    return text_act


def heads_from_config(config: Mapping) -> tuple[int, int]:
    """(vision_heads, text_heads) from config.json."""
    text, vision = _sections(config)
    heads = []
    for tower, section in (("vision", vision), ("text", text)):
        value = section["num_attention_heads"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConversionError(f"{tower}_config.num_attention_heads {value!r} is not a positive integer")
        heads.append(value)
    return heads[0], heads[1]


def _check_config(config: Mapping, vocab_size: int) -> None:
    text, vision = _sections(config)
    for tower, section in (("text", text), ("vision", vision)):
        eps = section["layer_norm_eps"]
        if not isinstance(eps, (int, float)) or abs(eps - OPENAI_LAYER_NORM_EPS) > 1e-12:
            raise ConversionError(
                f"{tower}_config.layer_norm_eps {eps!r} differs from CLIP's {OPENAI_LAYER_NORM_EPS}"
            )
    # HF pools the text at the first eos_token_id (or at the largest id when eos_token_id == 2, the
    # legacy value); clipdesk pools at the largest id, as OpenAI does. They agree when eos is 2 or
    # the last id of the vocabulary (CLIP's <|endoftext|> 49407).
    eos = text.get("eos_token_id", vocab_size - 1)
    if eos is not None and eos not in (2, vocab_size - 1):
        raise ConversionError(
            f"text_config.eos_token_id {eos} is not the last vocabulary id ({vocab_size - 1}): "
            "its text pooling differs from CLIP's"
        )


def _layer_indices(keys, prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = sorted({int(m.group(1)) for m in map(pattern.match, keys) if m})
    if found != list(range(len(found))):
        raise ConversionError(f"layers under {prefix!r} are not numbered 0..N-1 (found {found[:8]})")
    return found


def convert_hf_clip(hf_state_dict: Mapping[str, np.ndarray], config: Mapping) -> ConvertedClip:
    """Convert a transformers CLIPModel state dict (+ its config.json as a dict) to OpenAI layout.

    Every HF tensor must be consumed; leftovers, missing tensors, unsupported activations or layer
    norm eps, and incompatible text pooling raise ConversionError.
    """
    if not isinstance(config, Mapping):
        raise ConversionError("config.json is not a JSON object")
    src = {k: v for k, v in hf_state_dict.items()}
    for key, value in src.items():
        if not isinstance(value, np.ndarray):
            raise ConversionError(f"{key!r} is not a tensor")
    missing_towers = [t for t in ("text_model.", "vision_model.") if not any(k.startswith(t) for k in src)]
    if missing_towers:
        raise ConversionError(
            f"no {' or '.join(t.rstrip('.') for t in missing_towers)} weights: clipdesk needs a full "
            "CLIPModel (image and text towers)"
        )
    activation = activation_from_config(config)
    vision_heads, text_heads = heads_from_config(config)

    used: set[str] = set()
    missing: list[str] = []

    def take(key: str) -> np.ndarray | None:
        value = src.get(key)
        if value is None:
            missing.append(key)
            return None
        used.add(key)
        return value

    out: dict[str, np.ndarray] = {}

    def put(dst: str, key: str, transpose: bool = False) -> None:
        value = take(key)
        if value is not None:
            out[dst] = np.array(value.T if transpose else value, order="C")

    def blocks(hf_prefix: str, dst_prefix: str) -> None:
        for i in _layer_indices(src, hf_prefix):
            h, d = f"{hf_prefix}{i}.", f"{dst_prefix}{i}."
            for part in ("weight", "bias"):
                qkv = [take(f"{h}self_attn.{p}_proj.{part}") for p in ("q", "k", "v")]
                if all(t is not None for t in qkv):
                    if len({tuple(t.shape[1:]) for t in qkv}) != 1:
                        raise ConversionError(f"{h}self_attn q/k/v {part} shapes differ")
                    out[f"{d}attn.in_proj_{part}"] = np.concatenate(qkv, axis=0)
                put(f"{d}attn.out_proj.{part}", f"{h}self_attn.out_proj.{part}")
                put(f"{d}ln_1.{part}", f"{h}layer_norm1.{part}")
                put(f"{d}mlp.c_fc.{part}", f"{h}mlp.fc1.{part}")
                put(f"{d}mlp.c_proj.{part}", f"{h}mlp.fc2.{part}")
                put(f"{d}ln_2.{part}", f"{h}layer_norm2.{part}")

    # Text tower.
    put("token_embedding.weight", "text_model.embeddings.token_embedding.weight")
    put("positional_embedding", "text_model.embeddings.position_embedding.weight")
    blocks("text_model.encoder.layers.", "transformer.resblocks.")
    put("ln_final.weight", "text_model.final_layer_norm.weight")
    put("ln_final.bias", "text_model.final_layer_norm.bias")
    put("text_projection", "text_projection.weight", transpose=True)
    # Vision tower (HF CLIP has only ViT image towers).
    put("visual.class_embedding", "vision_model.embeddings.class_embedding")
    put("visual.positional_embedding", "vision_model.embeddings.position_embedding.weight")
    put("visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight")
    put("visual.ln_pre.weight", "vision_model.pre_layrnorm.weight")
    put("visual.ln_pre.bias", "vision_model.pre_layrnorm.bias")
    blocks("vision_model.encoder.layers.", "visual.transformer.resblocks.")
    put("visual.ln_post.weight", "vision_model.post_layernorm.weight")
    put("visual.ln_post.bias", "vision_model.post_layernorm.bias")
    put("visual.proj", "visual_projection.weight", transpose=True)
    put("logit_scale", "logit_scale")

    ignored = {"text_model.embeddings.position_ids", "vision_model.embeddings.position_ids"}
    leftover = [k for k in src if k not in used and k not in ignored]
    if missing:
        more = f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
        raise ConversionError(f"Hugging Face CLIP weights missing: {', '.join(missing[:_SHOWN])}{more}")
    if leftover:
        more = f" and {len(leftover) - _SHOWN} more" if len(leftover) > _SHOWN else ""
        raise ConversionError(
            f"unsupported Hugging Face CLIP weights (not a plain CLIPModel): "
            f"{', '.join(leftover[:_SHOWN])}{more}"
        )

    width = out["ln_final.weight"].shape[0]
    for tower, prefix, w in (("text", "transformer.resblocks.0.", width),
                             ("vision", "visual.transformer.resblocks.0.",
                              out["visual.ln_pre.weight"].shape[0])):
        fc = out.get(prefix + "mlp.c_fc.weight")
        if fc is not None and fc.shape[0] != 4 * w:
            raise ConversionError(
                f"{tower} MLP width {fc.shape[0]} is not 4 x width {w}, which clipdesk's CLIP requires"
            )
    _check_config(config, out["token_embedding.weight"].shape[0])
    return ConvertedClip(out, activation, vision_heads, text_heads)
