"""`clipdesk train`: contrastive training of a CLIP model, exported as a model package."""

from __future__ import annotations

from clipdesk.commands.common import log, require_train_side


def cmd_train(args) -> int:
    require_train_side()
    from clipdesk.train.trainer import run_from_args

    return run_from_args(args, log)


def register(commands) -> None:
    from clipdesk.train.options import add_arguments  # argparse only: no torch

    train = commands.add_parser(
        "train", help="train or fine-tune a CLIP model on image-caption data (needs clipdesk[train])",
        description="Train a CLIP model contrastively on a JSONL manifest or tar shards, evaluate it and "
                    "export DIR/model/. Runs data-parallel under `torchrun -m clipdesk.train` with the same options.")
    add_arguments(train)
    train.set_defaults(handler=cmd_train)
