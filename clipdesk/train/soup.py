"""Weight averaging, a "model soup" (Wortsman et al., 2022): the uniform mean of clipdesk weights files
fine-tuned from one starting point, written as one weights file that exports like any other.

    python -m clipdesk.train.soup data/runs/soup.safetensors data/runs/a/model.safetensors data/runs/b/model.safetensors

Every input must record the same config and mean/std and hold the same tensors; the mean is taken in
float64, one file at a time, and stored in float32 like the trainer's weights.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from clipdesk.errors import CheckpointError, ClipdeskError
from clipdesk.model.clip import CLIP
from clipdesk.train.checkpoint import read_weights, save_weights


def average_weights(paths: list[Path]) -> tuple[CLIP, tuple, tuple]:
    """The model whose every tensor is the mean of the inputs', with the inputs' mean/std."""
    if len(paths) < 2:
        raise CheckpointError("averaging needs at least two weights files")
    first = read_weights(paths[0])
    if first.config is None:
        raise CheckpointError(f"{paths[0]}: not a clipdesk checkpoint (no clip_config in its metadata)")
    total = {name: tensor.to(torch.float64) for name, tensor in first.state_dict.items()}
    for path in paths[1:]:
        other = read_weights(path)
        if (other.config, other.mean, other.std) != (first.config, first.mean, first.std):
            raise CheckpointError(f"{path}: its config or mean/std differ from {paths[0]}'s; only weights of "
                                  "one model, fine-tuned from one start, can be averaged")
        if other.state_dict.keys() != total.keys():
            raise CheckpointError(f"{path}: holds other tensors than {paths[0]}")
        for name, tensor in other.state_dict.items():
            if tensor.shape != total[name].shape:
                raise CheckpointError(f"{path}: tensor {name} has shape {tuple(tensor.shape)}, "
                                      f"not {tuple(total[name].shape)}")
            total[name] += tensor.to(torch.float64)
    model = CLIP(first.config)
    model.load_state_dict({name: (tensor / len(paths)).to(torch.float32) for name, tensor in total.items()},
                          strict=True)
    return model, first.mean, first.std


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clipdesk.train.soup", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the averaged weights file to write (.safetensors)")
    parser.add_argument("inputs", type=Path, nargs="+", help="clipdesk weights files (model.safetensors)")
    args = parser.parse_args(argv)
    try:
        model, mean, std = average_weights(args.inputs)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        save_weights(model, args.out, mean, std, averaged_from=" + ".join(str(path) for path in args.inputs))
    except ClipdeskError as error:
        print(f"clipdesk soup: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote the average of {len(args.inputs)} weights files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
