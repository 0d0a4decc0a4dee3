"""Checkpoint → verified model package: what `clipdesk model import` and `model export` run."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from clipdesk import paths
from clipdesk.errors import ClipdeskError
from clipdesk.model.build import build_model
from clipdesk.model.checkpoints import load_checkpoint
from clipdesk.model.clip import CLIP
from clipdesk.model.onnx_export import export_package
from clipdesk.runtime.package import PROVENANCE_CHECKPOINT, ModelPackage, check_model_name, sha256_of
from clipdesk.runtime.registry import model_entries, set_default_model

DEFAULT_ACTIVATION = "quick_gelu"


def model_from_checkpoint(path: str | Path, activation: str | None = None,
                          log: Callable[[str], None] = print) -> tuple[CLIP, dict]:
    """Build the model a checkpoint holds; returns it with provenance facts for the manifest."""
    checkpoint = load_checkpoint(path)
    chosen = activation or checkpoint.activation
    if chosen is None:
        chosen = DEFAULT_ACTIVATION
        if checkpoint.source_format != "openai-torchscript":
            # Weights cannot tell QuickGELU from GELU; a wrong guess gives plausible but poor embeddings.
            log(f"note: {Path(path).name} does not record its activation; using {chosen} (OpenAI's). "
                "OpenCLIP models trained on LAION without '-quickgelu' in their name need --activation gelu")
    elif activation and checkpoint.activation and activation != checkpoint.activation:
        raise ClipdeskError(f"{path}: the checkpoint says activation {checkpoint.activation}, "
                            f"but --activation {activation} was given")
    model = build_model(checkpoint.state_dict, chosen, **checkpoint.build_overrides)
    provenance = {
        "source": Path(path).name,
        "source_format": checkpoint.source_format,
        "source_dtype": checkpoint.source_dtype,
    }
    if Path(path).is_file():  # a Hugging Face model is a folder: its name says it
        provenance["source_sha256"] = sha256_of(Path(path))
    return model, provenance


def default_name_for(path: str | Path) -> str:
    stem = Path(path).name
    for suffix in (".safetensors", ".pt", ".pth", ".bin", ".ckpt"):
        stem = stem.removesuffix(suffix)
    cleaned = re.sub(r"[^A-Za-z0-9._@+-]+", "-", stem).strip("-.") or "model"
    return cleaned[:100]


def import_checkpoint(
    path: str | Path,
    *,
    name: str | None = None,
    activation: str | None = None,
    precision: str = "fp32",
    license: str = "unknown",
    description: str = "",
    templates: Sequence[str] = (),
    make_default: bool = False,
    log: Callable[[str], None] = print,
) -> ModelPackage:
    """Build, export, verify and register a checkpoint as a model in the store."""
    name = check_model_name(name or default_name_for(path))
    if name in model_entries():
        raise ClipdeskError(f"a model named {name!r} already exists; choose another --name")
    model, provenance = model_from_checkpoint(path, activation, log)
    # The store is this machine's: where the checkpoint lies lets `train --init NAME` fine-tune it. A package
    # exported for elsewhere (export_checkpoint) records its name and hash only.
    provenance[PROVENANCE_CHECKPOINT] = str(Path(path).resolve())
    kind = "ViT" if model.config.is_vit else "ResNet"
    log(f"read {Path(path).name}: CLIP {kind}, {model.config.image_resolution} px, "
        f"embed_dim {model.config.embed_dim} ({provenance['source_format']}, {provenance['source_dtype']})")
    package = export_package(model, paths.models_dir() / name, name=name, precision=precision,
                             provenance=provenance, license=license, description=description,
                             templates=templates, log=log)
    if make_default:
        set_default_model(name)
    return package


def export_checkpoint(
    path: str | Path,
    out_dir: str | Path,
    *,
    name: str | None = None,
    activation: str | None = None,
    precision: str = "fp32",
    license: str = "unknown",
    description: str = "",
    templates: Sequence[str] = (),
    lexicon: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> ModelPackage:
    """Write a checkpoint as a verified model package at `out_dir`, without registering it."""
    model, provenance = model_from_checkpoint(path, activation, log)
    return export_package(model, out_dir, name=check_model_name(name or default_name_for(path)),
                          precision=precision, provenance=provenance, license=license, description=description,
                          templates=templates, lexicon=lexicon, log=log)
