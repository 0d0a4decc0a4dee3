"""How to call a package's two graphs: the manifest's optional `io` block, with defaults filled in.

clipdesk's own packages need no block: `image.onnx` maps `pixels` to `image_embeds`, `text.onnx` maps int64
`input_ids` to `text_embeds`, both with a dynamic batch, outputs not normalised, images resized on their
shorter side (bicubic) and centre-cropped. CLIP exports published elsewhere differ in each of these
(docs/catalog.md lists them); the block records the differences and the encoders honour them:

    "io": {
      "image": {"file": "visual.onnx", "input": "input", "output": "output",
                "batch": null, "normalized": false},
      "text":  {"file": "textual.onnx", "input": "input", "output": "output", "dtype": "int64",
                "batch": null, "sequence": 77, "attention_mask": null, "pad_id": 0, "normalized": false},
      "preprocess": {"resize": "shortest", "interpolation": "bicubic"},
      "tokenizer_file": null
    }

`batch` / `sequence`: null for a dynamic axis, else the size the graph fixes. `attention_mask`: the name
of a second text input (1 for real tokens, 0 for padding) where the graph takes one. `tokenizer_file`: the
tokenizer.json of a package whose manifest names the `hf-tokenizers` tokenizer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from clipdesk.errors import ModelPackageError

RESIZE_MODES = ("shortest", "squash")  # shorter side to the size then centre crop; or both sides to it
INTERPOLATIONS = ("bicubic", "bilinear")
TOKEN_DTYPES = ("int64", "int32")


@dataclass(frozen=True)
class TowerIO:
    file: str
    input: str
    output: str
    batch: int | None = None
    normalized: bool = False
    # Text tower only.
    dtype: str = "int64"
    sequence: int | None = None
    attention_mask: str | None = None
    pad_id: int = 0


@dataclass(frozen=True)
class Preprocessing:
    resize: str = "shortest"
    interpolation: str = "bicubic"


IMAGE_DEFAULTS = TowerIO(file="image.onnx", input="pixels", output="image_embeds")
TEXT_DEFAULTS = TowerIO(file="text.onnx", input="input_ids", output="text_embeds")


@dataclass(frozen=True)
class PackageIO:
    image: TowerIO = IMAGE_DEFAULTS
    text: TowerIO = TEXT_DEFAULTS
    preprocess: Preprocessing = field(default_factory=Preprocessing)
    tokenizer_file: str | None = None

    @property
    def extra_files(self) -> list[str]:
        """Files the package needs besides its graphs."""
        return [self.tokenizer_file] if self.tokenizer_file else []

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_manifest(cls, manifest, source: str) -> "PackageIO":
        from clipdesk.runtime.package import TOKENIZER_HF

        block = manifest.io
        if block is None:
            if manifest.tokenizer == TOKENIZER_HF:
                raise ModelPackageError(f"{source}: a package with the {TOKENIZER_HF} tokenizer needs an io block "
                                        "naming its tokenizer_file")
            return cls()
        if not isinstance(block, dict):
            raise ModelPackageError(f"{source}: manifest io must be a JSON object")
        unknown = sorted(set(block) - {"image", "text", "preprocess", "tokenizer_file"})
        if unknown:
            raise ModelPackageError(f"{source}: unknown keys in manifest io: {', '.join(unknown)}")
        result = cls(image=_tower(block.get("image", {}), IMAGE_DEFAULTS, f"{source}: io.image"),
                     text=_tower(block.get("text", {}), TEXT_DEFAULTS, f"{source}: io.text"),
                     preprocess=_preprocessing(block.get("preprocess", {}), f"{source}: io.preprocess"),
                     tokenizer_file=block.get("tokenizer_file"))
        from clipdesk.runtime.package import check_relative_path

        for name in (result.image.file, result.text.file, *result.extra_files):
            check_relative_path(name, source)
        if (manifest.tokenizer == TOKENIZER_HF) != (result.tokenizer_file is not None):
            raise ModelPackageError(f"{source}: io.tokenizer_file goes with the {TOKENIZER_HF} tokenizer, and only with it")
        if result.text.sequence is not None and result.text.sequence != manifest.context_length:
            raise ModelPackageError(f"{source}: io.text.sequence {result.text.sequence} differs from the context "
                                    f"length {manifest.context_length}")
        return result


def _tower(data: Any, defaults: TowerIO, source: str) -> TowerIO:
    if not isinstance(data, dict):
        raise ModelPackageError(f"{source} must be a JSON object")
    names = {item.name: item.type for item in fields(TowerIO)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ModelPackageError(f"{source}: unknown keys {', '.join(unknown)}")
    tower = TowerIO(**{**asdict(defaults), **data})
    text_fields = (tower.file, tower.input, tower.output)
    if not all(isinstance(value, str) and value for value in text_fields):
        raise ModelPackageError(f"{source}: file, input and output must be non-empty texts")
    for key in ("batch", "sequence"):
        value = getattr(tower, key)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 4096):
            raise ModelPackageError(f"{source}: {key} must be null (dynamic) or a positive size, not {value!r}")
    if tower.dtype not in TOKEN_DTYPES:
        raise ModelPackageError(f"{source}: dtype must be one of {', '.join(TOKEN_DTYPES)}, not {tower.dtype!r}")
    if tower.attention_mask is not None and not (isinstance(tower.attention_mask, str) and tower.attention_mask):
        raise ModelPackageError(f"{source}: attention_mask must be null or an input name")
    if not isinstance(tower.normalized, bool) or not isinstance(tower.pad_id, int):
        raise ModelPackageError(f"{source}: normalized must be true or false and pad_id a token id")
    return tower


def _preprocessing(data: Any, source: str) -> Preprocessing:
    if not isinstance(data, dict) or set(data) - {"resize", "interpolation"}:
        raise ModelPackageError(f"{source} must be an object with resize and interpolation")
    result = Preprocessing(**data)
    if result.resize not in RESIZE_MODES or result.interpolation not in INTERPOLATIONS:
        raise ModelPackageError(f"{source}: resize must be one of {', '.join(RESIZE_MODES)} and interpolation one "
                                f"of {', '.join(INTERPOLATIONS)} (got {result.resize!r}, {result.interpolation!r})")
    return result
