"""Indexing throughput: clipdesk's indexer against a naive loop with the same model, and re-indexing.

Naive loop: one Python thread; full Pillow decode, resize, normalise (runtime.preprocess), one ONNX
call per batch of 32, through the same ONNX Runtime session settings as the indexer; timed twice,
with ONNX Runtime on its default threads and limited to one (single-threaded throughout). Indexer: a
fresh library, `index_folders` end to end (scan, hash, EXIF, thumbnails, SQLite, embeddings).
Both include creating the ONNX session. Also printed: the model alone on random pixels (no
decoding at all), which bounds what any pipeline can reach, and re-indexing the unchanged library
in-process and as a `clipdesk index` process.

    .venv/bin/python benchmarks/index_throughput.py                      # ViT-B/32-shaped random weights
    .venv/bin/python benchmarks/index_throughput.py --model PACKAGE_DIR --limit 320 --repeats 3

Without --model, a ViT-B/32-shaped package with random weights is exported once (needs torch) into
<clipdesk cache>/benchmarks/. Figures are medians; runs alternate so background load hits both alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from clipdesk import paths
from clipdesk.runtime.package import load_package

DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos" / "imagenet-sample"
NAIVE_BATCH = 32


def vit_b32_package() -> Path:
    folder = paths.cache_dir() / "benchmarks" / "vit-b-32-random"
    if not (folder / "manifest.json").exists():
        import torch

        from clipdesk.model import create_model, get_config
        from clipdesk.model.onnx_export import export_package

        print(f"exporting a ViT-B/32-shaped random-weight package to {folder} (once)", flush=True)
        torch.manual_seed(0)
        export_package(create_model(get_config("ViT-B/32")), folder, name="vit-b-32-random", overwrite=True,
                       log=lambda _: None)
    return folder


def naive_loop(files: list[Path], package, onnx_threads: int | None = None) -> float:
    from clipdesk.runtime.encoders import ImageEncoder
    from clipdesk.runtime.preprocess import load_image, preprocess_batch

    started = time.perf_counter()
    encoder = ImageEncoder(package, intra_op_threads=onnx_threads)
    manifest = package.manifest
    for start in range(0, len(files), NAIVE_BATCH):
        images = [load_image(path) for path in files[start:start + NAIVE_BATCH]]
        pixels = preprocess_batch(images, manifest.image_resolution, manifest.mean, manifest.std)
        encoder.encode_pixels(pixels, NAIVE_BATCH)
    return time.perf_counter() - started


def model_alone(count: int, package) -> float:
    from clipdesk.runtime.encoders import ImageEncoder

    encoder = ImageEncoder(package)
    size = package.manifest.image_resolution
    pixels = np.random.default_rng(0).standard_normal((NAIVE_BATCH, 3, size, size)).astype(np.float32)
    encoder.encode_pixels(pixels[:2])  # warm-up
    batches = -(-count // NAIVE_BATCH)
    started = time.perf_counter()
    for _ in range(batches):
        encoder.encode_pixels(pixels, NAIVE_BATCH)
    return (time.perf_counter() - started) * count / (batches * NAIVE_BATCH)  # seconds for `count` photos


def indexer_run(folder: Path, package, home: Path, batch_size: int) -> tuple[float, dict]:
    from clipdesk.library.indexer import index_folders
    from clipdesk.library.store import Library

    os.environ["CLIPDESK_HOME"] = str(home)
    started = time.perf_counter()
    with Library() as library:
        summary = index_folders(library, [folder], package, batch_size=batch_size)
    return time.perf_counter() - started, summary.to_dict()


def cli_reindex(folder: Path, model_dir: Path, home: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "clipdesk", "index", str(folder), "--model", str(model_dir)], check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, "CLIPDESK_HOME": str(home)})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--model", type=Path, help="model package folder (default: ViT-B/32-shaped random weights)")
    parser.add_argument("--limit", type=int, default=1000, help="photos to use (default 1000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="the indexer's batch size")
    args = parser.parse_args()

    model_dir = args.model or vit_b32_package()
    package = load_package(model_dir)
    files = sorted(path for path in args.photos.iterdir() if path.is_file())[: args.limit]
    work = Path(tempfile.mkdtemp(prefix="clipdesk-bench-"))
    try:
        measure(files, package, model_dir, work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(files: list[Path], package, model_dir: Path, work: Path, args) -> None:
    folder = work / "photos"
    folder.mkdir()
    for path in files:  # exactly the chosen photos, through links the scanner follows
        (folder / path.name).symlink_to(path.resolve())
    count = len(files)
    print(f"{count} photos from {args.photos}; model {package.name} ({package.manifest.image_resolution} px, "
          f"embed {package.manifest.embed_dim}); {os.cpu_count()} CPUs", flush=True)

    naive_times, single_times, index_times, reindex_times, cli_times = [], [], [], [], []
    for run in range(args.repeats):
        naive_times.append(naive_loop(files, package))
        single_times.append(naive_loop(files, package, onnx_threads=1))
        home = work / f"home-{run}"
        seconds, summary = indexer_run(folder, package, home, args.batch_size)
        assert summary["embedded"] + summary["reused"] == count - summary["failed"], summary
        index_times.append(seconds)
        reindex_seconds, again = indexer_run(folder, package, home, args.batch_size)
        assert again["unchanged"] == count, again
        reindex_times.append(reindex_seconds)
        cli_times.append(cli_reindex(folder, model_dir, home))
        print(f"  run {run + 1}: naive {count / naive_times[-1]:.1f} photos/s (ONNX on 1 thread: "
              f"{count / single_times[-1]:.1f}), indexer {count / seconds:.1f} photos/s, "
              f"re-index {reindex_seconds:.3f} s (CLI process {cli_times[-1]:.2f} s)", flush=True)
    alone = statistics.median(model_alone(count, package) for _ in range(args.repeats))

    naive, single, indexed = (statistics.median(times) for times in (naive_times, single_times, index_times))
    print(f"naive loop:        {count / naive:7.1f} photos/s  ({naive:.1f} s; ONNX Runtime on its default threads)")
    print(f"naive, 1 thread:   {count / single:7.1f} photos/s  ({single:.1f} s; ONNX Runtime limited to one thread)")
    print(f"clipdesk indexer:  {count / indexed:7.1f} photos/s  ({indexed:.1f} s)")
    print(f"speed-up:          {naive / indexed:7.2f}x over the naive loop, {single / indexed:.2f}x over the "
          "all-single-threaded one (target >= 2x)")
    print(f"model alone:       {count / alone:7.1f} photos/s  (no decoding: the most any pipeline can reach; "
          f"caps the speed-up at {naive / alone:.2f}x on this machine)")
    print(f"re-index unchanged {count} photos: {statistics.median(reindex_times):.3f} s in-process, "
          f"{statistics.median(cli_times):.2f} s as a `clipdesk index` process (target < 2 s)")


if __name__ == "__main__":
    main()
