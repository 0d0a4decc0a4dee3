"""Training checkpoints: safetensors weights plus optimizer, schedule and RNG state.

A checkpoint is a folder `checkpoints/step-00001234/` holding
  model.safetensors  the weights; metadata carries the ClipConfig as JSON (head counts and activation
                     cannot be read from tensor shapes) and the mean/std the model was trained with
                     (clipdesk/model/weights_format.py)
  state.pt           optimizer state, step, epoch, position in the epoch, RNG state, options; plain
                     tensors and containers, read back with torch.load(weights_only=True)
It is written into a hidden folder and renamed into place, so a killed run never leaves a half-written
checkpoint where --resume looks. The newest KEEP checkpoints are kept.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from clipdesk.errors import CheckpointError
from clipdesk.model.build import build_model
from clipdesk.model.clip import CLIP
from clipdesk.atomic import folder_in_place_of
from clipdesk.checkpoint.architecture import ClipConfig
from clipdesk.checkpoint.weights_format import is_clipdesk_metadata, read_weights_metadata, weights_metadata

WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "state.pt"
CHECKPOINTS_DIR = "checkpoints"
KEEP = 2


@dataclass
class Weights:
    state_dict: dict[str, torch.Tensor]
    config: ClipConfig | None  # None for safetensors files not written by clipdesk
    mean: tuple[float, float, float] | None
    std: tuple[float, float, float] | None
    metadata: dict[str, str]


def save_weights(model: CLIP, path: Path, mean, std, **extra: str) -> None:
    metadata = {**weights_metadata(model.config, mean, std), **extra}
    tensors = {name: tensor.detach().to("cpu").contiguous() for name, tensor in model.state_dict().items()}
    temporary = path.with_name(path.name + ".tmp")
    save_file(tensors, str(temporary), metadata=metadata)
    temporary.replace(path)


def read_weights(path: Path) -> Weights:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            state = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path}: cannot be read as safetensors ({str(error).splitlines()[0]})") from None
    try:
        recorded = read_weights_metadata(metadata)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    if recorded is None:
        return Weights(state, None, None, None, metadata)
    return Weights(state, recorded.config, recorded.mean, recorded.std, metadata)


def is_clipdesk_weights(path: Path) -> bool:
    if path.suffix != ".safetensors" or not path.is_file():
        return False
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            return is_clipdesk_metadata(handle.metadata())
    except (SafetensorError, OSError):
        return False


def model_from_weights(path: Path) -> tuple[CLIP, tuple, tuple]:
    """The model a clipdesk weights file holds, rebuilt from its recorded config; with its mean/std."""
    weights = read_weights(path)
    if weights.config is None:
        raise CheckpointError(f"{path}: not a clipdesk checkpoint (no clip_config in its metadata)")
    model = CLIP(weights.config)
    try:
        model.load_state_dict(weights.state_dict, strict=True)
    except RuntimeError as error:
        reason = str(error).splitlines()[0]
        raise CheckpointError(f"{path}: weights do not match the recorded config ({reason})") from None
    return model.float(), weights.mean, weights.std


def model_from_state_dict(state_dict: dict, config: ClipConfig) -> CLIP:
    """Like build_model, but with the exact config (head counts need not be width / 64)."""
    model = build_model(state_dict, config.activation, vision_heads=config.vision_heads, text_heads=config.text_heads)
    if model.config != config:
        raise CheckpointError(f"weights describe {model.config}, expected {config}")
    return model


# ------------------------------------------------------------------------------------ checkpoints


def checkpoints_dir(out_dir: Path) -> Path:
    return out_dir / CHECKPOINTS_DIR


def _step_folders(out_dir: Path) -> list[Path]:
    folder = checkpoints_dir(out_dir)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith("step-")
             and (p / WEIGHTS_FILE).is_file() and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name.removeprefix("step-")))


def latest_checkpoint(out_dir: Path) -> Path | None:
    folders = _step_folders(out_dir)
    return folders[-1] if folders else None


def save_checkpoint(out_dir: Path, model: CLIP, optimizer: torch.optim.Optimizer, state: dict, mean, std) -> Path:
    """Write checkpoints/step-N/ atomically and prune the older ones; `state` must hold 'step'."""
    folder = checkpoints_dir(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"step-{state['step']:08d}"
    with folder_in_place_of(target, Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder))) as staging:
        save_weights(model, staging / WEIGHTS_FILE, mean, std, step=str(state["step"]))
        payload = {**state, "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()}
        if torch.cuda.is_available():
            payload["cuda_rng"] = torch.cuda.get_rng_state_all()
        torch.save(payload, staging / STATE_FILE)
    for old in _step_folders(out_dir)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    for leftover in folder.glob(".incoming-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    return target


def load_state(checkpoint: Path) -> dict:
    try:
        return torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling refusals and damaged files alike
        raise CheckpointError(f"{checkpoint / STATE_FILE}: cannot be read ({str(error).splitlines()[0]})") from None


def restore(checkpoint: Path, model: CLIP, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Load weights, optimizer state and RNG state of a checkpoint into a freshly built run."""
    weights = read_weights(checkpoint / WEIGHTS_FILE)
    if weights.config is not None and weights.config != model.config:
        raise CheckpointError(f"{checkpoint}: its model config differs from this run's")
    model.load_state_dict(weights.state_dict, strict=True)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
