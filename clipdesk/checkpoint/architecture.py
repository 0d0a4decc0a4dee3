"""The one home of CLIP's architecture facts, without torch: the hyperparameters that describe a model
(ClipConfig, the named CONFIGS), how they are read back from an OpenAI-layout state dict's names and
shapes (config_from_state_dict), and which tensors of which shapes a config has (state_dict_shapes).

The PyTorch model (clipdesk/model) and the ONNX graph writer (clipdesk/checkpoint/graphs.py) are both
built from these; tests hold both to state_dict_shapes. Every field except `activation` can be read back
from the tensor shapes; `activation` cannot, because QuickGELU and GELU have no weights.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from clipdesk.errors import CheckpointError, ClipdeskError

ACTIVATIONS = ("quick_gelu", "gelu")


@dataclass(frozen=True)
class ClipConfig:
    embed_dim: int
    image_resolution: int
    vision_layers: int | tuple[int, int, int, int]  # int: ViT depth; 4-tuple: ResNet stage depths
    vision_width: int
    vision_patch_size: int | None  # None for ResNet
    vision_heads: int
    context_length: int
    vocab_size: int
    text_width: int
    text_heads: int
    text_layers: int
    activation: str = "quick_gelu"  # OpenAI-trained weights need quick_gelu; many LAION ones gelu

    def __post_init__(self) -> None:
        # JSON has no tuples; normalise so that equality and hashing work after a round trip.
        if isinstance(self.vision_layers, list):
            object.__setattr__(self, "vision_layers", tuple(self.vision_layers))
        problem = self._problem()
        if problem:
            raise ClipdeskError(f"invalid CLIP config: {problem}")

    def _problem(self) -> str | None:
        if self.activation not in ACTIVATIONS:
            return f"activation {self.activation!r} is not one of {', '.join(ACTIVATIONS)}"
        if self.is_vit:
            if not self.vision_patch_size:
                return "a ViT needs vision_patch_size"
            if self.image_resolution % self.vision_patch_size:
                return (f"image_resolution {self.image_resolution} is not a multiple of "
                        f"vision_patch_size {self.vision_patch_size}")
        else:
            if len(self.vision_layers) != 4 or self.vision_patch_size is not None:
                return "a ResNet needs 4 stage depths and vision_patch_size None"
            if self.image_resolution % 32:
                return f"a ResNet's image_resolution {self.image_resolution} is not a multiple of 32"
        vision_embed = self.vision_width if self.is_vit else self.vision_width * 32
        for what, width, heads in (("vision", vision_embed, self.vision_heads),
                                   ("text", self.text_width, self.text_heads)):
            if heads < 1 or width % heads:
                return f"{what} width {width} is not divisible by {what}_heads {heads}"
        return None

    @property
    def is_vit(self) -> bool:
        return isinstance(self.vision_layers, int)

    def to_dict(self) -> dict:
        data = asdict(self)
        if not self.is_vit:
            data["vision_layers"] = list(self.vision_layers)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ClipConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ClipdeskError(f"invalid CLIP config: unknown fields {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as error:  # a missing field
            raise ClipdeskError(f"invalid CLIP config: {error}") from None


def _openai(embed_dim, resolution, layers, width, patch, text_width, *, heads=None) -> ClipConfig:
    """OpenAI's released models: 77-token context, 49,408-token BPE vocabulary, 12 text layers,
    and head counts of width / 64 (the ResNet attention pool works on width * 32 channels)."""
    if heads is None:
        heads = width // 64 if isinstance(layers, int) else width * 32 // 64
    return ClipConfig(
        embed_dim=embed_dim, image_resolution=resolution, vision_layers=layers, vision_width=width,
        vision_patch_size=patch, vision_heads=heads, context_length=77, vocab_size=49408,
        text_width=text_width, text_heads=text_width // 64, text_layers=12, activation="quick_gelu",
    )


CONFIGS: dict[str, ClipConfig] = {
    "RN50": _openai(1024, 224, (3, 4, 6, 3), 64, None, 512),
    "RN101": _openai(512, 224, (3, 4, 23, 3), 64, None, 512),
    "RN50x4": _openai(640, 288, (4, 6, 10, 6), 80, None, 640),
    "ViT-B/32": _openai(512, 224, 12, 768, 32, 512),
    "ViT-B/16": _openai(512, 224, 12, 768, 16, 512),
    "ViT-L/14": _openai(768, 224, 24, 1024, 14, 768),
    "ViT-L/14@336": _openai(768, 336, 24, 1024, 14, 768),
    # Trainable on a 2-core CPU. The vocabulary stays OpenAI's so the same BPE tokenizer serves
    # every model; the text context is shortened because photo captions are short and attention
    # cost grows with it. Head width 64 as in OpenAI's models.
    "tiny": ClipConfig(
        embed_dim=128, image_resolution=64, vision_layers=4, vision_width=128, vision_patch_size=8,
        vision_heads=2, context_length=32, vocab_size=49408, text_width=128, text_heads=2,
        text_layers=4, activation="quick_gelu",
    ),
    "small": ClipConfig(
        embed_dim=256, image_resolution=96, vision_layers=6, vision_width=256, vision_patch_size=12,
        vision_heads=4, context_length=32, vocab_size=49408, text_width=256, text_heads=4,
        text_layers=6, activation="quick_gelu",
    ),
}


def get_config(name: str) -> ClipConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise ClipdeskError(
            f"unknown model config {name!r}; known configs: {', '.join(CONFIGS)}"
        ) from None


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


def _block_shapes(prefix: str, width: int, layers: int) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for i in range(layers):
        p = f"{prefix}{i}."
        shapes.update({
            p + "attn.in_proj_weight": (3 * width, width), p + "attn.in_proj_bias": (3 * width,),
            p + "attn.out_proj.weight": (width, width), p + "attn.out_proj.bias": (width,),
            p + "ln_1.weight": (width,), p + "ln_1.bias": (width,),
            p + "mlp.c_fc.weight": (4 * width, width), p + "mlp.c_fc.bias": (4 * width,),
            p + "mlp.c_proj.weight": (width, 4 * width), p + "mlp.c_proj.bias": (width,),
            p + "ln_2.weight": (width,), p + "ln_2.bias": (width,),
        })
    return shapes


def _batch_norm(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    return {prefix + name: (channels,) for name in ("weight", "bias", "running_mean", "running_var")} | {
        prefix + "num_batches_tracked": ()}


def resnet_stages(layers: tuple[int, int, int, int], width: int):
    """(stage index 1-4, block index, in channels, planes, stride) of every Bottleneck of a ModifiedResNet
    with these stage depths and stem width: stage i has planes width * 2**(i-1) and outputs 4 * planes
    channels; its first block strides by 2 (but stage 1's), through an average pool."""
    inplanes = width
    for stage, depth in enumerate(layers, start=1):
        planes = width * 2 ** (stage - 1)
        for block in range(depth):
            yield stage, block, inplanes, planes, (2 if stage > 1 and block == 0 else 1)
            inplanes = planes * 4


def state_dict_shapes(config: ClipConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of an OpenAI-layout state dict of `config`, with its shape, in state-dict order."""
    shapes: dict[str, tuple[int, ...]] = {"positional_embedding": (config.context_length, config.text_width),
                                          "text_projection": (config.text_width, config.embed_dim),
                                          "logit_scale": ()}
    width = config.vision_width
    if config.is_vit:
        grid = config.image_resolution // config.vision_patch_size
        patch = config.vision_patch_size
        shapes |= {"visual.class_embedding": (width,), "visual.positional_embedding": (grid * grid + 1, width),
                   "visual.proj": (width, config.embed_dim),
                   "visual.conv1.weight": (width, 3, patch, patch),
                   "visual.ln_pre.weight": (width,), "visual.ln_pre.bias": (width,)}
        shapes |= _block_shapes("visual.transformer.resblocks.", width, config.vision_layers)
        shapes |= {"visual.ln_post.weight": (width,), "visual.ln_post.bias": (width,)}
    else:
        half = width // 2
        for index, (cin, cout) in enumerate(((3, half), (half, half), (half, width)), start=1):
            shapes[f"visual.conv{index}.weight"] = (cout, cin, 3, 3)
            shapes |= _batch_norm(f"visual.bn{index}.", cout)
        for stage, block, inplanes, planes, stride in resnet_stages(config.vision_layers, width):
            p = f"visual.layer{stage}.{block}."
            for index, (cin, cout, k) in enumerate(((inplanes, planes, 1), (planes, planes, 3),
                                                    (planes, planes * 4, 1)), start=1):
                shapes[f"{p}conv{index}.weight"] = (cout, cin, k, k)
                shapes |= _batch_norm(f"{p}bn{index}.", cout)
            if stride > 1 or inplanes != planes * 4:
                shapes[p + "downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                shapes |= _batch_norm(p + "downsample.1.", planes * 4)
        channels, grid = width * 32, config.image_resolution // 32
        shapes["visual.attnpool.positional_embedding"] = (grid * grid + 1, channels)
        for name in ("k", "q", "v"):
            shapes |= {f"visual.attnpool.{name}_proj.weight": (channels, channels),
                       f"visual.attnpool.{name}_proj.bias": (channels,)}
        shapes |= {"visual.attnpool.c_proj.weight": (config.embed_dim, channels),
                   "visual.attnpool.c_proj.bias": (config.embed_dim,)}
    shapes |= _block_shapes("transformer.resblocks.", config.text_width, config.text_layers)
    shapes |= {"token_embedding.weight": (config.vocab_size, config.text_width),
               "ln_final.weight": (config.text_width,), "ln_final.bias": (config.text_width,)}
    return shapes


def mismatch(config: ClipConfig, state_dict: Mapping) -> str | None:
    """One line naming the first few missing, unexpected and misshapen keys, or None."""
    expected = state_dict_shapes(config)
    given = {k: tuple(v.shape) if hasattr(v, "shape") else None for k, v in state_dict.items()}
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
