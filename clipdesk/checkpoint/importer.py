"""Checkpoint → verified model package, without torch: what `clipdesk model import` and `model export` run.

reader.py reads the weights into numpy, architecture.py reads the config back from their shapes, and
graphs.py writes both towers as ONNX. The package is then run in ONNX Runtime on real inputs (drawings
through the real preprocessing, captions at the tokenizer's edges) and refused unless every vector is
finite and of the model's width; an fp16 or int8 package must also agree with the fp32 graphs. All of it
happens in a staging folder, so a failed or killed import leaves nothing where the app looks for models.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from clipdesk import __version__, paths
from clipdesk.atomic import folder_in_place_of
from clipdesk.checkpoint.architecture import ClipConfig, config_from_state_dict, mismatch
from clipdesk.checkpoint.graphs import PRECISIONS, GraphTooLarge, write_tower
from clipdesk.checkpoint.reader import Checkpoint, LegacyLoader, float32, read_checkpoint
from clipdesk.checkpoint.verification import MIN_COSINE, VERIFY_CAPTIONS, compare, verification_images
from clipdesk.errors import CheckpointError, ClipdeskError
from clipdesk.runtime.package import (
    IMAGE_FILE, LEXICON_FILE, PROVENANCE_CHECKPOINT, TEXT_FILE, Manifest, ModelPackage, check_model_name,
    check_templates, load_package, sha256_of, write_manifest,
)
from clipdesk.runtime.preprocess import OPENAI_MEAN, OPENAI_STD, preprocess_batch
from clipdesk.runtime.registry import model_entries, set_default_model, staging_dir
from clipdesk.runtime.tokenizer import get_tokenizer

DEFAULT_ACTIVATION = "quick_gelu"


def resolve_activation(checkpoint: Checkpoint, path: str | Path, activation: str | None,
                       log: Callable[[str], None]) -> str:
    """The activation to build with: the one given, else the file's, else OpenAI's QuickGELU (with a note)."""
    if activation and checkpoint.activation and activation != checkpoint.activation:
        raise ClipdeskError(f"{path}: the checkpoint says activation {checkpoint.activation}, "
                            f"but --activation {activation} was given")
    chosen = activation or checkpoint.activation
    if chosen is None:
        chosen = DEFAULT_ACTIVATION
        if checkpoint.source_format != "openai-torchscript":
            # Weights cannot tell QuickGELU from GELU; a wrong guess gives plausible but poor embeddings.
            log(f"note: {Path(path).name} does not record its activation; using {chosen} (OpenAI's). "
                "OpenCLIP models trained on LAION without '-quickgelu' in their name need --activation gelu")
    return chosen


def checkpoint_provenance(path: str | Path, checkpoint: Checkpoint) -> dict:
    provenance = {"source": Path(path).name, "source_format": checkpoint.source_format,
                  "source_dtype": checkpoint.source_dtype}
    if Path(path).is_file():  # a Hugging Face model is a folder: its name says it
        provenance["source_sha256"] = sha256_of(Path(path))
    return provenance


def checkpoint_config(checkpoint: Checkpoint, activation: str) -> ClipConfig:
    """The architecture the weights hold; CheckpointError when they are not one complete CLIP."""
    config = config_from_state_dict(checkpoint.state_dict, activation, **checkpoint.build_overrides)
    problem = mismatch(config, checkpoint.state_dict)
    if problem:
        raise CheckpointError(f"checkpoint does not match a CLIP {'ViT' if config.is_vit else 'ResNet'}: {problem}")
    return config


def default_name_for(path: str | Path) -> str:
    stem = Path(path).name
    for suffix in (".safetensors", ".pt", ".pth", ".bin", ".ckpt"):
        stem = stem.removesuffix(suffix)
    cleaned = re.sub(r"[^A-Za-z0-9._@+-]+", "-", stem).strip("-.") or "model"
    return cleaned[:100]


def clip_manifest(config: ClipConfig, *, name: str, logit_scale: float, precision: str,
                  mean=OPENAI_MEAN, std=OPENAI_STD, provenance: Mapping | None = None, license: str = "unknown",
                  description: str = "", templates: Sequence[str] = ()) -> Manifest:
    """The manifest of a package in clipdesk's own layout for a model of `config`."""
    return Manifest(
        name=name, architecture=config.to_dict(), embed_dim=config.embed_dim,
        image_resolution=config.image_resolution, mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std), context_length=config.context_length, logit_scale=logit_scale,
        precision=precision,
        provenance={"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    "clipdesk_version": __version__, **(provenance or {})},
        license=license, description=description, templates=list(templates),
    )


@contextlib.contextmanager
def staged_package(out_dir: Path, overwrite: bool = False) -> Iterator[Path]:
    """A staging folder beside `out_dir` that becomes `out_dir` when the block succeeds, and is removed
    when it fails or is interrupted."""
    if out_dir.exists() and not (overwrite and out_dir.is_dir()):
        raise ClipdeskError(f"{out_dir} already exists; choose another output folder")
    with folder_in_place_of(out_dir, staging_dir(out_dir.parent)) as staging:
        yield staging


def _run_towers(package: ModelPackage) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image vectors, and text vectors in batches of mixed lengths and one caption at a time."""
    from clipdesk.runtime.encoders import ImageEncoder, TextEncoder

    manifest = package.manifest
    pixels = preprocess_batch(verification_images(), manifest.image_resolution, manifest.mean, manifest.std)
    token_ids = get_tokenizer()(VERIFY_CAPTIONS, context_length=manifest.context_length)
    # One session at a time: each holds a copy of its tower's weights.
    image = ImageEncoder(package, device="cpu").encode_pixels(pixels, batch_size=3, normalize=False)
    text = TextEncoder(package, device="cpu")
    return image, text.encode_ids(token_ids, batch_size=4, normalize=False), text.encode_ids(
        token_ids, batch_size=1, normalize=False)


def _check_vectors(outputs: Sequence[np.ndarray], embed_dim: int) -> None:
    for what, vectors in zip(("image", "text", "text"), outputs):
        if vectors.ndim != 2 or vectors.shape[1] != embed_dim:
            raise ClipdeskError(f"the {what} graph gives vectors of shape {list(vectors.shape)}, not "
                                f"(N, {embed_dim})")
        if not np.isfinite(vectors).all():
            raise ClipdeskError(f"the {what} graph gives non-finite values (NaN or infinity) on real inputs; "
                                "the weights are damaged or the architecture was misread")


def _write_and_run(staging: Path, manifest: Manifest, config: ClipConfig, weights: Mapping[str, np.ndarray],
                   precision: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        for tower, file_name in (("image", IMAGE_FILE), ("text", TEXT_FILE)):
            write_tower(staging / file_name, tower, config, weights, precision)
    except GraphTooLarge as error:
        raise ClipdeskError(str(error)) from None
    manifest.precision = precision
    write_manifest(staging, manifest)
    outputs = _run_towers(load_package(staging))
    _check_vectors(outputs, config.embed_dim)
    return outputs


def write_checkpoint_package(checkpoint: Checkpoint, config: ClipConfig, out_dir: Path, *, name: str,
                             mean=OPENAI_MEAN, std=OPENAI_STD, precision: str = "fp32", provenance: Mapping | None = None, license: str = "unknown",
                             description: str = "", templates: Sequence[str] = (), lexicon: str | Path | None = None,
                             overwrite: bool = False, log: Callable[[str], None] = print) -> ModelPackage:
    """Write the checkpoint's two graphs and manifest at `out_dir`, run them, and refuse them unless sound."""
    if precision not in PRECISIONS:
        raise ClipdeskError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    templates = check_templates(list(templates), "--template")  # before any work
    if lexicon is not None:
        from clipdesk.runtime.lexicon import Lexicon

        Lexicon.read(Path(lexicon))  # a bad file is refused before any work
    weights = checkpoint.state_dict
    logit_scale = float(np.exp(float32(weights["logit_scale"]).astype(np.float64).reshape(-1)[0]))
    manifest = clip_manifest(config, name=name, logit_scale=logit_scale, precision="fp32", mean=mean, std=std,
                             provenance=provenance, license=license, description=description, templates=templates)
    with staged_package(Path(out_dir), overwrite) as staging:
        started = time.perf_counter()
        if lexicon is not None:
            shutil.copyfile(lexicon, staging / LEXICON_FILE)
        # fp32 first: the reference an fp16 or int8 package is held to.
        outputs = _write_and_run(staging, manifest, config, weights, "fp32")
        verification = {"inputs": f"{len(outputs[0])} images, {len(VERIFY_CAPTIONS)} captions",
                        "writer": "clipdesk.checkpoint (no PyTorch)"}
        # A batch of mixed lengths and one caption at a time must agree: the graph's sequence axis is cut.
        if compare(outputs[1], outputs[2])[1] < MIN_COSINE["fp32"]:
            raise ClipdeskError("the text graph depends on the batch it runs in")
        if precision != "fp32":
            stored = _write_and_run(staging, manifest, config, weights, precision)
            image_cos = compare(outputs[0], stored[0])[1]
            text_cos = min(compare(outputs[1], stored[1])[1], compare(outputs[2], stored[2])[1])
            verification |= {"image_min_cosine_vs_fp32": image_cos, "text_min_cosine_vs_fp32": text_cos}
            if min(image_cos, text_cos) < MIN_COSINE[precision]:
                raise ClipdeskError(f"the {precision} graphs stray too far from fp32 (min cosine: image "
                                    f"{image_cos:.4f}, text {text_cos:.4f}); import with a wider --precision")
        verification["seconds"] = round(time.perf_counter() - started, 2)
        manifest.verification = verification
        write_manifest(staging, manifest)
        log(f"verified {name} ({precision}) in ONNX Runtime: finite {config.embed_dim}-wide vectors for "
            f"{len(outputs[0])} images and {len(VERIFY_CAPTIONS)} captions")
    return load_package(out_dir)


def read_for_package(path: str | Path, activation: str | None, legacy_loader: LegacyLoader | None,
                     log: Callable[[str], None]) -> tuple[Checkpoint, ClipConfig, dict]:
    checkpoint = read_checkpoint(path, legacy_loader)
    config = checkpoint_config(checkpoint, resolve_activation(checkpoint, path, activation, log))
    provenance = checkpoint_provenance(path, checkpoint)
    log(f"read {Path(path).name}: CLIP {'ViT' if config.is_vit else 'ResNet'}, {config.image_resolution} px, "
        f"embed_dim {config.embed_dim} ({provenance['source_format']}, {provenance['source_dtype']})")
    return checkpoint, config, provenance


def import_checkpoint(path: str | Path, *, name: str | None = None, activation: str | None = None,
                      precision: str = "fp32", license: str = "unknown", description: str = "",
                      templates: Sequence[str] = (), make_default: bool = False,
                      legacy_loader: LegacyLoader | None = None, log: Callable[[str], None] = print) -> ModelPackage:
    """Read, convert, verify and register a checkpoint as a model in the store."""
    name = check_model_name(name or default_name_for(path))
    if name in model_entries():
        raise ClipdeskError(f"a model named {name!r} already exists; choose another --name")
    checkpoint, config, provenance = read_for_package(path, activation, legacy_loader, log)
    # The store is this machine's: where the checkpoint lies lets `train --init NAME` fine-tune it. A package
    # exported for elsewhere (export_checkpoint) records its name and hash only.
    provenance[PROVENANCE_CHECKPOINT] = str(Path(path).resolve())
    package = write_checkpoint_package(checkpoint, config, paths.models_dir() / name, name=name, precision=precision,
                                       provenance=provenance, license=license, description=description,
                                       templates=templates, log=log)
    if make_default:
        set_default_model(name)
    return package


def export_checkpoint(path: str | Path, out_dir: str | Path, *, name: str | None = None,
                      activation: str | None = None, precision: str = "fp32", license: str = "unknown",
                      description: str = "", templates: Sequence[str] = (), lexicon: str | Path | None = None,
                      legacy_loader: LegacyLoader | None = None, log: Callable[[str], None] = print) -> ModelPackage:
    """Write a checkpoint as a verified model package at `out_dir`, without registering it."""
    name = check_model_name(name or default_name_for(path))
    checkpoint, config, provenance = read_for_package(path, activation, legacy_loader, log)
    return write_checkpoint_package(checkpoint, config, Path(out_dir), name=name, precision=precision,
                                    provenance=provenance, license=license, description=description,
                                    templates=templates, lexicon=lexicon, log=log)
