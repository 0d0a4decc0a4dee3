"""Small helpers shared by the command modules."""

from __future__ import annotations

import json
import sys

from clipdesk.errors import ClipdeskError

DEVICE_CHOICES = ("auto", "cpu", "cuda")
TRAIN_EXTRA_HINT = (
    "importing PyTorch checkpoints needs clipdesk's training components (pip install 'clipdesk[train]'); "
    "ready model packages (a folder or .zip with manifest.json) import without them"
)


def print_json(value) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def log(message: str) -> None:
    """Progress and notes go to stderr so that stdout stays clean for --json."""
    print(message, file=sys.stderr)


def require_train_side() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ClipdeskError(TRAIN_EXTRA_HINT) from None
