"""Layouts: how each publisher lays out a CLIP export, turned into a model package's manifest and io block.

Each layout names the inputs and outputs its exporter writes (docs/catalog.md gives the source of each
fact); the graphs themselves are the authority on dtypes and fixed shapes, which are read from them. The
adapters know files and ONNX, nothing of HTTP (hub/client.py does the fetching).
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clipdesk import __version__
from clipdesk.errors import ModelPackageError
from clipdesk.runtime.package import TOKENIZER_CLIP_BPE, TOKENIZER_HF, Manifest, load_package
from clipdesk.runtime.package_io import INTERPOLATIONS, RESIZE_MODES


@dataclass(frozen=True)
class GraphNames:
    image_inputs: tuple[str, ...]
    image_outputs: tuple[str, ...]
    text_inputs: tuple[str, ...]
    text_outputs: tuple[str, ...]
    normalized: bool


# rclip scripts/convert_model.py: `input` -> `output` for both towers, raw features.
# transformers.js (optimum's CLIP configs): `pixel_values` -> `image_embeds`, `input_ids` -> `text_embeds`, raw.
# Immich export (openclip.py, mclip.py): `image` -> `embedding`, `text` (or `input_ids` + `attention_mask` for
# M-CLIP) -> `embedding`, normalised in the graph; older exports named the outputs image_/text_embedding.
GRAPH_NAMES = {
    "rclip": GraphNames(("input",), ("output",), ("input",), ("output",), normalized=False),
    "transformers.js": GraphNames(("pixel_values",), ("image_embeds",), ("input_ids",), ("text_embeds",),
                                  normalized=False),
    "immich": GraphNames(("image",), ("embedding", "image_embedding"), ("text", "input_ids"),
                         ("embedding", "text_embedding"), normalized=True),
}
ATTENTION_MASK = "attention_mask"
_DTYPES = {"tensor(int32)": "int32", "tensor(int64)": "int64"}


def _graph(path: Path) -> tuple[dict[str, Any], list[Any]]:
    from clipdesk.runtime.encoders import create_session

    if not path.is_file():
        raise ModelPackageError(f"{path}: missing from the download")
    session = create_session(path, "cpu")
    return {item.name: item for item in session.get_inputs()}, session.get_outputs()


def _pick(names: tuple[str, ...], available, what: str, path: Path) -> str:
    for name in names:
        if name in available:
            return name
    raise ModelPackageError(f"{path}: expected the {what} to be named {' or '.join(names)}, found "
                            f"{', '.join(sorted(available))}: not this layout's export")


def _fixed(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def tower_io(layout: str, image_path: Path, text_path: Path, root: Path) -> dict[str, Any]:
    """The io block's towers for graphs in `layout`, with names, dtypes and fixed sizes read from them."""
    names = GRAPH_NAMES[layout]
    image_inputs, image_outputs = _graph(image_path)
    text_inputs, text_outputs = _graph(text_path)
    image_input = _pick(names.image_inputs, image_inputs, "image input", image_path)
    text_input = _pick(names.text_inputs, text_inputs, "text input", text_path)
    text_shape = text_inputs[text_input].shape
    dtype = _DTYPES.get(text_inputs[text_input].type)
    if dtype is None:
        raise ModelPackageError(f"{text_path}: text input {text_input!r} is {text_inputs[text_input].type}, not "
                                "int32 or int64 token ids")
    extra = sorted(set(text_inputs) - {text_input, ATTENTION_MASK})
    if extra:
        raise ModelPackageError(f"{text_path}: unexpected text inputs {', '.join(extra)}")
    return {
        "image": {"file": image_path.relative_to(root).as_posix(), "input": image_input,
                  "output": _pick(names.image_outputs, [o.name for o in image_outputs], "image output", image_path),
                  "batch": _fixed(image_inputs[image_input].shape[0]), "normalized": names.normalized},
        "text": {"file": text_path.relative_to(root).as_posix(), "input": text_input,
                 "output": _pick(names.text_outputs, [o.name for o in text_outputs], "text output", text_path),
                 "batch": _fixed(text_shape[0]), "sequence": _fixed(text_shape[-1]) if len(text_shape) == 2 else None,
                 "dtype": dtype, "attention_mask": ATTENTION_MASK if ATTENTION_MASK in text_inputs else None,
                 "normalized": names.normalized},
    }


def immich_preprocessing(path: Path) -> dict[str, Any]:
    """visual/preprocess_cfg.json (open_clip's PreprocessCfg): size, mean, std, interpolation, resize_mode."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        size = data["size"][0] if isinstance(data["size"], list) else data["size"]
        result = {"image_size": int(size), "mean": [float(v) for v in data["mean"]],
                  "std": [float(v) for v in data["std"]],
                  "resize": data.get("resize_mode", "shortest"), "interpolation": data.get("interpolation", "bicubic")}
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ModelPackageError(f"{path}: not a preprocessing config ({type(exc).__name__}: {exc})") from None
    if result["resize"] not in RESIZE_MODES or result["interpolation"] not in INTERPOLATIONS:
        raise ModelPackageError(f"{path}: resize_mode {result['resize']!r} / interpolation "
                                f"{result['interpolation']!r} are not supported")
    return result


def hf_pad_id(tokenizer_json: Path, tokenizer_config: Path | None) -> int:
    """The pad token's id: tokenizer_config.json's pad_token looked up in tokenizer.json."""
    from tokenizers import Tokenizer

    pad_token = "<pad>"
    if tokenizer_config is not None and tokenizer_config.is_file():
        try:
            value = json.loads(tokenizer_config.read_text(encoding="utf-8")).get("pad_token", pad_token)
        except (ValueError, OSError) as exc:
            raise ModelPackageError(f"{tokenizer_config}: not valid JSON ({exc})") from None
        pad_token = value.get("content", pad_token) if isinstance(value, dict) else value
    pad_id = Tokenizer.from_file(str(tokenizer_json)).token_to_id(pad_token)
    if pad_id is None:
        raise ModelPackageError(f"{tokenizer_json}: has no pad token {pad_token!r}")
    return pad_id


def wrap_download(entry, root: Path, files: dict[str, dict[str, Any]], commit: str | None) -> Manifest:
    """The manifest of a package made from a catalog entry's files downloaded under `root` (at their paths in
    the repository). `files`: path -> {sha256, bytes} as verified on download."""
    if entry.layout == "clipdesk":
        return _clipdesk_manifest(entry, root, files, commit)
    image_path, text_path = root / entry.files["image"], root / entry.files["text"]
    io = tower_io(entry.layout, image_path, text_path, root)
    preprocess = {"resize": "shortest", "interpolation": "bicubic"}
    image_size, mean, std = entry.image_size, list(entry.mean), list(entry.std)
    tokenizer = TOKENIZER_CLIP_BPE
    if "preprocess_config" in entry.files:
        found = immich_preprocessing(root / entry.files["preprocess_config"])
        image_size, mean, std = found["image_size"], found["mean"], found["std"]
        preprocess = {"resize": found["resize"], "interpolation": found["interpolation"]}
    io["preprocess"] = preprocess
    if "tokenizer" in entry.files:  # a tokenizer of its own (multilingual models): CLIP's BPE otherwise
        tokenizer = TOKENIZER_HF
        io["tokenizer_file"] = entry.files["tokenizer"]
        config = entry.files.get("tokenizer_config")
        io["text"]["pad_id"] = hf_pad_id(root / entry.files["tokenizer"], root / config if config else None)
    if io["text"]["sequence"] not in (None, entry.context_length):
        raise ModelPackageError(f"{text_path}: the graph takes {io['text']['sequence']} tokens, the catalog says "
                                f"{entry.context_length}")
    manifest = Manifest(
        name=entry.package_name, architecture={"layout": entry.layout, "repo": entry.repo},
        embed_dim=0, image_resolution=image_size, mean=tuple(mean), std=tuple(std),
        context_length=entry.context_length, logit_scale=float(entry.logit_scale), tokenizer=tokenizer,
        precision=entry.variant or "fp32", files=files, provenance=_provenance(entry, commit),
        license=entry.licence, description=entry.about, io=io,
    )
    manifest.embed_dim = _embed_dim(root, manifest)
    return manifest


def _embed_dim(root: Path, manifest: Manifest) -> int:
    """Both towers' output width, from one real run each; they must agree."""
    from clipdesk.runtime.encoders import ClipModel
    from clipdesk.runtime.package import ModelPackage

    model = ClipModel(ModelPackage(root, manifest), device="cpu")
    image = model.image.encode_pixels(np.zeros((1, 3, manifest.image_resolution, manifest.image_resolution),
                                               np.float32), normalize=False)
    manifest.embed_dim = image.shape[-1]
    text = model.text.encode(["a photo"], normalize=False)
    if image.ndim != 2 or text.ndim != 2 or image.shape[1] != text.shape[1]:
        raise ModelPackageError(f"{root}: the image tower gives {image.shape[1:]} values and the text tower "
                                f"{text.shape[1:]}: not one CLIP model")
    return int(image.shape[1])


def _provenance(entry, commit: str | None) -> dict[str, Any]:
    return {"source": "model hub", "repo": entry.repo, "revision": entry.revision, "commit": commit,
            "layout": entry.layout, "variant": entry.variant,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "clipdesk_version": __version__}


def _clipdesk_manifest(entry, root: Path, files: dict[str, dict[str, Any]], commit: str | None) -> Manifest:
    """A clipdesk package kept in a hub repository: its own manifest, checked against the downloaded bytes."""
    package = load_package(root)
    package.verify_hashes()
    manifest = package.manifest
    manifest.name = entry.package_name
    manifest.provenance = {**manifest.provenance, "hub": _provenance(entry, commit)}
    return manifest


def weights_preprocessing(root: Path, entry) -> tuple[list[float], list[float]]:
    """Mean and std for weights downloaded under `root`: OpenCLIP's open_clip_config.json (preprocess_cfg) or
    transformers' preprocessor_config.json (image_mean, image_std) where they say, else the catalog entry's."""
    for role, section, keys in (("config", "preprocess_cfg", ("mean", "std")),
                                ("preprocess_config", None, ("image_mean", "image_std"))):
        path = root / entry.files[role] if role in entry.files else None
        if path is None or not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            data = data.get(section) or {} if section else data
            mean, std = ([float(v) for v in data[key]] for key in keys)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # says nothing of it: the next source, or the entry's
        if len(mean) == len(std) == 3 and min(std) > 0:
            return mean, std
    return list(entry.mean), list(entry.std)
