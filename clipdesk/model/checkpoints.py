"""Checkpoints as torch tensors, for the train side: clipdesk/checkpoint/reader.py reads every format
without torch; this adds PyTorch's legacy (pre-1.6) format, which only torch.load(weights_only=True)
reads, and hands the weights over as tensors."""

from __future__ import annotations

import dataclasses
import pickle
import re
import struct
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from clipdesk.checkpoint import reader
from clipdesk.checkpoint.reader import BFLOAT16, Checkpoint
from clipdesk.errors import CheckpointError

__all__ = ["Checkpoint", "load_checkpoint", "read_torchscript_state_dict"]


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a CLIP checkpoint file or folder; its state dict as float32 (floating) torch tensors.
    Raises CheckpointError (one line) on any problem."""
    checkpoint = reader.read_checkpoint(path, legacy_loader=legacy_load)
    return dataclasses.replace(checkpoint, state_dict={
        k: torch.from_numpy(reader.float32(v) if reader.is_floating(v) else np.array(v))
        for k, v in checkpoint.state_dict.items()})


def read_torchscript_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A TorchScript archive's parameters and buffers in their stored dtypes, as tensors."""
    return {k: to_tensor(v) for k, v in reader.read_torchscript_state_dict(path).items()}


def to_tensor(array: np.ndarray) -> torch.Tensor:
    if array.dtype == BFLOAT16:
        return torch.from_numpy(np.array(array, order="C").view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(np.array(array))  # a writable copy: arrays may view a read-only file


def to_array(tensor: torch.Tensor) -> np.ndarray:
    if tensor.dtype == torch.bfloat16:
        return tensor.contiguous().view(torch.int16).numpy().view(BFLOAT16)
    return tensor.numpy()


def legacy_load(path: Path):
    """A legacy-format file's contents, with numpy arrays for its tensors."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. torch's note about pickle protocols
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(f"{path}: {_describe_unpickling_error(str(error))}") from None
    except (EOFError, RuntimeError, ValueError, TypeError, AttributeError, KeyError, IndexError,
            struct.error, zipfile.BadZipFile, UnicodeDecodeError, OverflowError) as error:
        text = str(error)
        if isinstance(error, EOFError) or any(s in text for s in (
                "truncated", "Ran out of input", "unexpected EOF", "failed reading", "invalid header",
                "file_size", "out of bounds")):
            raise CheckpointError(f"{path}: is truncated or damaged ({_first_line(text)})") from None
        raise CheckpointError(f"{path}: cannot be read as a PyTorch checkpoint ({_first_line(text)})") from None
    return _arrays(loaded)


def _arrays(obj, depth: int = 0):
    """Tensors → arrays, through the dict wrappers a checkpoint may have."""
    if isinstance(obj, torch.Tensor):
        return to_array(obj)
    if isinstance(obj, Mapping) and depth < 4:
        return {k: _arrays(v, depth + 1) for k, v in obj.items()}
    return obj


def _describe_unpickling_error(text: str) -> str:
    """torch's weights-only errors, without its advice to load unsafely."""
    detail = text.split("WeightsUnpickler error:", 1)[-1]
    detail = detail.split("Check the documentation of torch.load", 1)[0]
    detail = " ".join(detail.split())
    match = re.search(r"Unsupported global: GLOBAL\s+([\w.]+)", detail) or re.search(
        r"GLOBAL\s+([\w.]+)", detail)
    if match:
        return (f"refused: its pickle would import or call {match.group(1)}, which a weights-only load "
                "does not allow (nothing was run); save the model's state_dict() instead")
    if any(s in detail for s in ("truncated", "EOF", "Ran out of input")):
        return f"is truncated or damaged ({detail[:200]})"
    return f"refused: unsafe or invalid pickle ({detail[:200] or 'no details'})"


def _first_line(text: str) -> str:
    return next((line.strip()[:200] for line in text.strip().splitlines() if line.strip()), "no details")
