"""A seeded random subset of a JSONL manifest, e.g. a quick validation set for evaluation during training.

    python -m clipdesk.data.sample_rows data/emoji-icons/val.jsonl data/emoji-icons/val-2k.jsonl --rows 2000
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from clipdesk.atomic import write_lines_atomically


def sample_rows(source: Path, target: Path, rows: int, seed: int = 0) -> int:
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(lines)
    chosen = lines[:rows]
    return write_lines_atomically(target, chosen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"wrote {sample_rows(args.source, args.target, args.rows, args.seed)} rows to {args.target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
