"""A checkpoint as a PyTorch CLIP, for the train side (`clipdesk train --init CHECKPOINT`). Importing a
checkpoint as a model package needs no torch: clipdesk/checkpoint/importer.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from clipdesk.checkpoint.importer import checkpoint_provenance, resolve_activation
from clipdesk.model.build import build_model
from clipdesk.model.checkpoints import load_checkpoint
from clipdesk.model.clip import CLIP


def model_from_checkpoint(path: str | Path, activation: str | None = None,
                          log: Callable[[str], None] = print) -> tuple[CLIP, dict]:
    """Build the model a checkpoint holds; returns it with provenance facts for the manifest."""
    checkpoint = load_checkpoint(path)
    chosen = resolve_activation(checkpoint, path, activation, log)
    return build_model(checkpoint.state_dict, chosen, **checkpoint.build_overrides), checkpoint_provenance(
        path, checkpoint)
