"""Small helpers shared by the command modules."""

from __future__ import annotations

import json
import sys

from clipdesk.errors import ClipdeskError

DEVICE_CHOICES = ("auto", "cpu", "cuda")
TRAIN_EXTRA_HINT = "training needs clipdesk's training components (pip install 'clipdesk[train]')"
# The installed app (PyInstaller bundle) leaves the training components out on purpose, and pip cannot
# add them to a bundle: point to the way that works.
FROZEN_TRAIN_HINT = (
    "training needs clipdesk's training components, which this app leaves out; train where Python is "
    "installed (pip install 'clipdesk[train]') and import the trained model here"
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
        raise ClipdeskError(FROZEN_TRAIN_HINT if getattr(sys, "frozen", False) else TRAIN_EXTRA_HINT) from None


def add_model_option(parser) -> None:
    """`--model`, as every command that embeds or searches takes it."""
    parser.add_argument("--model", help="registered model name or model package folder (default: the default model)")

TEMPLATE_HELP = ("prompt template with {} for the label (repeatable), or a named set: model (the model's own "
                 "templates, else 'a photo of a {}.'; the default), default ('a photo of a {}.'), ensemble "
                 "(the paper's 80 templates), ensemble-7")
