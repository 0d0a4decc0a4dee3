"""Near-duplicate grouping time against library size (every pair is compared: time grows as N squared).

Synthetic 512-d unit vectors with a planted near-duplicate in every 100 photos, held in a VectorIndex as
search holds them; times `near_duplicate_groups` (blocked similarity matrix + union-find) and checks that
every planted pair is found.

    .venv/bin/python benchmarks/search_duplicates.py --rows 10000 20000 40000
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from clipdesk.search.duplicates import near_duplicate_groups
from clipdesk.search.vector_index import VectorIndex

DIM = 512


def library_vectors(rows: int, seed: int = 0) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((rows, DIM), dtype=np.float32)
    planted = rows // 100
    # Photo 100*i + 1 is a slightly changed copy of photo 100*i (cosine ~0.99).
    originals = np.arange(planted) * 100
    vectors[originals + 1] = vectors[originals] + 0.1 * rng.standard_normal((planted, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, planted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 20_000, 40_000])
    parser.add_argument("--threshold", type=float, default=0.95)
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}; threshold {args.threshold}")
    for rows in args.rows:
        vectors, planted = library_vectors(rows)
        index = VectorIndex.from_vectors(np.arange(rows), vectors.astype(np.float16))
        started = time.perf_counter()
        ids, blocks = zip(*index.iter_blocks())
        ids, unit = np.concatenate(ids), np.concatenate(blocks)
        unit /= np.linalg.norm(unit, axis=1, keepdims=True)
        groups = near_duplicate_groups(ids, unit, args.threshold)
        seconds = time.perf_counter() - started
        found = sum(1 for group, _ in groups if len(group) == 2 and group[1] - group[0] == 1 and group[0] % 100 == 0)
        pairs = rows * (rows - 1) / 2
        print(f"{rows:>8,} photos: {seconds:7.1f} s ({pairs / seconds / 1e6:6.1f} M pairs/s); "
              f"{len(groups)} groups, {found}/{planted} planted pairs found")


if __name__ == "__main__":
    main()
