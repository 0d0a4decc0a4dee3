"""`--init`: the trained weights a fine-tuning run starts from.

Accepted: a clipdesk weights file (.safetensors with its config in the metadata), a training output
folder (its final weights, else its latest checkpoint), any checkpoint `clipdesk model import` reads
(OpenAI, OpenCLIP, Hugging Face), or an installed model / model package folder. A model package holds
ONNX graphs: it is fine-tuned from the PyTorch checkpoint it was made from when its manifest records
one that still exists (packages written by `clipdesk train`, `model import` and `model export` of a
checkpoint do), read with the package's architecture; otherwise its weights are read back out of its
graphs (model/package_weights.py: exact for fp32 packages, fp16-rounded for fp16 ones).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clipdesk.errors import ClipdeskError
from clipdesk.model.clip import CLIP
from clipdesk.checkpoint.architecture import ClipConfig
from clipdesk.runtime.package import MANIFEST, PROVENANCE_CHECKPOINT, ModelPackage
from clipdesk.runtime.preprocess import OPENAI_MEAN, OPENAI_STD
from clipdesk.train.checkpoint import WEIGHTS_FILE, is_clipdesk_weights, latest_checkpoint, model_from_weights

FINAL_WEIGHTS = "model.safetensors"  # beside DIR/model/: the trained weights of a finished run


@dataclass
class InitialModel:
    model: CLIP
    mean: tuple
    std: tuple
    source: str  # where the weights came from, for logs and provenance


def _from_file_or_folder(path: Path, activation: str | None, log: Callable[[str], None]) -> InitialModel:
    if is_clipdesk_weights(path):
        model, mean, std = model_from_weights(path)
        return InitialModel(model, mean, std, str(path))
    if path.is_dir() and (path / FINAL_WEIGHTS).is_file() and is_clipdesk_weights(path / FINAL_WEIGHTS):
        return _from_file_or_folder(path / FINAL_WEIGHTS, activation, log)
    if path.is_dir() and latest_checkpoint(path) is not None:
        return _from_file_or_folder(latest_checkpoint(path) / WEIGHTS_FILE, activation, log)
    if path.is_dir() and (path / MANIFEST).is_file():
        from clipdesk.runtime.package import load_package

        return _from_package(load_package(path), activation, log)
    from clipdesk.model.checkpoint_import import model_from_checkpoint

    model, provenance = model_from_checkpoint(path, activation, log)
    return InitialModel(model, OPENAI_MEAN, OPENAI_STD, f"{path} ({provenance['source_format']})")


def _from_package(package: ModelPackage, activation: str | None, log: Callable[[str], None]) -> InitialModel:
    recorded = package.manifest.provenance.get(PROVENANCE_CHECKPOINT)
    if recorded and Path(recorded).exists():  # a file, or a Hugging Face folder
        architecture = ClipConfig.from_dict(package.manifest.architecture)
        # The activation given at import (`--activation gelu`) is in the architecture, not in the checkpoint.
        initial = _from_file_or_folder(Path(recorded), activation or architecture.activation, log)
        if initial.model.config != architecture:
            raise ClipdeskError(f"model {package.name!r}: the weights in {recorded} are not the architecture it was "
                                "made with (changed since, or another --activation); pass --init with a checkpoint")
        # The package's mean/std are what its users' images are normalised with.
        return InitialModel(initial.model, tuple(package.manifest.mean), tuple(package.manifest.std), initial.source)
    from clipdesk.model.package_weights import model_from_package

    why = f"the checkpoint it was made from ({recorded}) no longer exists" if recorded else "it names no checkpoint"
    log(f"model {package.name!r}: {why}; reading its weights back from its ONNX graphs ({package.manifest.precision})")
    return InitialModel(model_from_package(package), tuple(package.manifest.mean), tuple(package.manifest.std),
                        f"{package.path} (weights read from its {package.manifest.precision} ONNX graphs)")


def load_initial_model(spec: str, activation: str | None = None,
                       log: Callable[[str], None] = print) -> InitialModel:
    path = Path(spec).expanduser()
    if path.exists():
        return _from_file_or_folder(path, activation, log)
    from clipdesk.runtime.registry import model_entries, resolve_model

    if spec in model_entries():
        return _from_package(resolve_model(spec), activation, log)
    raise ClipdeskError(f"--init {spec}: no such file, folder or installed model "
                        "(`clipdesk model list` shows the installed ones)")
