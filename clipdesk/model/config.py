"""The hyperparameters that fully describe one CLIP architecture.

Every field except `activation` can be read back from a checkpoint's tensor shapes (see build.py);
`activation` cannot, because QuickGELU and GELU have no weights, so it travels with the config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from clipdesk.errors import ClipdeskError

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
