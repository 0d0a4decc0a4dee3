"""`python -m clipdesk.train ...` and `torchrun --nproc_per_node=N -m clipdesk.train ...`.

The same options as `clipdesk train`; under torchrun every process runs this module.
"""

from __future__ import annotations

import argparse
import os
import sys

from clipdesk.errors import ClipdeskError
from clipdesk.train.options import add_arguments


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clipdesk.train",
                                     description="Train a CLIP model contrastively (see `clipdesk train --help`).")
    add_arguments(parser)
    args = parser.parse_args(argv)
    # Under torchrun, errors are the same in every process; one copy is enough.
    prefix = "clipdesk train: error: " if os.environ.get("RANK", "0") == "0" else None
    try:
        from clipdesk.train.trainer import run_from_args

        return run_from_args(args, log)
    except ClipdeskError as error:
        if prefix:
            print(prefix + str(error), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("clipdesk train: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
