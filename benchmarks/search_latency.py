"""Search latency, index memory and `clipdesk search` cold start over a large synthetic library.

Builds, once, a real library database with N photos (default 1,000,000) and synthetic 512-d float16
embeddings (clustered around a shared direction, as CLIP's are, rather than uniform on the sphere),
plus a model package whose text tower has ViT-B/32's shape (12 layers, width 512, 77 tokens; random
weights, tiny image tower). Everything goes to a cache folder and is reused by later runs. Then prints:

- load: rebuilding the in-memory index from the database, and opening its saved snapshot instead
  (what the first search of a process pays);
- memory of the vectors in the index, and the process's peak resident memory;
- p50/p95 latency of: the index search alone, a search from a ready query vector (index + paths), a
  text query end to end (tokenizer + text encoder + index + paths), the text encoder alone, and a
  text query with a date filter;
- cold start of `clipdesk search` in a new process (start to printed results), on this library and on a
  small one, so the cost of loading the vectors shows apart from starting Python and the model.

    .venv/bin/python benchmarks/search_latency.py                  # 1M photos, ViT-B/32-shaped text tower
    .venv/bin/python benchmarks/search_latency.py --rows 100000 --text-model tiny

Building the 1M library takes a few minutes and ~2.8 GB of disk (database and index snapshot); the
ViT-B/32 text package needs torch (the train extra) once, to export; `--text-model tiny` uses a 1-layer
text tower instead.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import platformdirs

DIM = 512
QUERIES = [
    "a dog on a beach", "kids playing in the snow", "a red car parked on a street", "sunset over the sea",
    "birthday cake with candles", "a cat sleeping on a sofa", "mountains under a blue sky", "people at a wedding",
    "a plate of pasta", "an old church in a small town", "a bicycle leaning on a wall", "fireworks at night",
    "a baby laughing", "a forest in autumn", "the eiffel tower", "a train station", "flowers in a garden",
    "a man surfing a big wave", "a crowded market", "a lighthouse on a cliff", "ducks on a pond",
    "a snowy cabin", "a football match", "a desk with a laptop", "a horse in a field", "city lights from above",
    "a lake with a wooden pier", "a child on a swing", "an airplane in the sky", "a bowl of fruit",
]
TEXT_MODELS = {
    # ViT-B/32's text tower; the image tower is tiny because only text queries are timed.
    "vit-b32": dict(embed_dim=DIM, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=8,
                    vision_heads=1, context_length=77, vocab_size=49408, text_width=512, text_heads=8,
                    text_layers=12),
    "tiny": dict(embed_dim=DIM, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=8,
                 vision_heads=1, context_length=77, vocab_size=49408, text_width=64, text_heads=1, text_layers=1),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# Bump when the exporter changes the graphs it writes, so the cached package is exported again
# (2: text graph with a dynamic sequence length).
PACKAGE_VERSION = 2


def model_package(cache: Path, kind: str) -> Path:
    folder = cache / "models" / f"bench-{kind}-text"
    marker = folder.parent / f"{folder.name}.json"
    wanted = {"version": PACKAGE_VERSION}
    if (folder / "manifest.json").is_file() and marker.is_file() and json.loads(marker.read_text()) == wanted:
        return folder
    log(f"exporting a {kind}-shaped model package (needs torch, once per package version) ...")
    import torch

    from clipdesk.model import ClipConfig, create_model
    from clipdesk.model.onnx_export import export_package

    torch.manual_seed(0)
    folder.parent.mkdir(parents=True, exist_ok=True)
    export_package(create_model(ClipConfig(**TEXT_MODELS[kind])), folder, name=f"bench-{kind}-text",
                   overwrite=True, log=lambda _: None)
    marker.write_text(json.dumps(wanted))
    return folder


def synthetic_vectors(rng, count: int, mean: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Unit vectors around a shared direction and 2,000 cluster centres: pairwise cosines ~0.2-0.6."""
    noise = rng.standard_normal((count, DIM), dtype=np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    vectors = 0.45 * mean + 0.55 * centers[rng.integers(0, len(centers), count)] + 0.7 * noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def build_library(home: Path, rows: int, model_key: str) -> None:
    """A real library database (the store's schema) with `rows` photos embedded under `model_key`."""
    marker = home / "bench.json"
    wanted = {"rows": rows, "model": model_key, "version": 1}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return
    for stale in home.glob("library.db*"):
        stale.unlink()
    os.environ["CLIPDESK_HOME"] = str(home)
    from clipdesk.library.store import Library

    log(f"building a library of {rows:,} photos in {home} (once) ...")
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    mean = rng.standard_normal(DIM).astype(np.float32)
    mean /= np.linalg.norm(mean)
    centers = rng.standard_normal((2000, DIM)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    (home / "photos").mkdir(parents=True, exist_ok=True)
    with Library() as library:
        folder = library.add_folder(home / "photos")
        base = os.fsencode(folder.path)
        chunk = 50_000
        for start in range(0, rows, chunk):
            count = min(chunk, rows - start)
            vectors = synthetic_vectors(rng, count, mean, centers).astype("<f2")
            days = rng.integers(0, 25 * 365, count)
            photos = [(folder.id, base + b"/f%02d/%07d.jpg" % (i % 10, i), 3_000_000, 1, f"{i:064x}", 4000, 3000,
                       np.datetime64("2000-01-01") + np.timedelta64(int(d), "D"), "OK")
                      for i, d in zip(range(start, start + count), days.tolist())]
            with library.transaction() as conn:
                conn.executemany(
                    "INSERT INTO photos (folder_id, path, size, mtime_ns, hash, width, height, taken_at, format, "
                    "status, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ? || 'T12:00:00', ?, 'ok', 0)",
                    [(*row[:7], str(row[7]), "JPEG") for row in photos])
                first = conn.execute("SELECT id FROM photos WHERE path = ?", (photos[0][1],)).fetchone()[0]
                conn.executemany("INSERT INTO embeddings (photo_id, model, vector) VALUES (?, ?, ?)",
                                 ((first + n, model_key, vectors[n].tobytes()) for n in range(count)))
            log(f"  {start + count:,} photos ({time.perf_counter() - started:.0f} s)")
        library.compact_change_log()
    marker.write_text(json.dumps(wanted))


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"p50 {statistics.median(ordered) * 1e3:6.1f} ms  p95 {p95 * 1e3:6.1f} ms (n={len(ordered)})"


def timed(function, repeats: int = 1) -> list[float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def yardstick() -> str:
    matrix = np.random.default_rng(2).standard_normal((100_000, DIM), dtype=np.float32)
    return latencies(lambda probe: matrix @ probe, list(matrix[:21]))


def float16_blocked_top_k(vectors: np.ndarray, query: np.ndarray, k: int, block_rows: int = 16384) -> np.ndarray:
    """The plain way: float16 storage, float32 products block by block, argpartition."""
    scores = np.empty(len(vectors), np.float32)
    for start in range(0, len(vectors), block_rows):
        np.dot(vectors[start:start + block_rows].astype(np.float32), query, out=scores[start:start + block_rows])
    best = np.argpartition(scores, len(scores) - k)[len(scores) - k:]
    return best[np.argsort(-scores[best])]


def compare_designs(vectors16: np.ndarray, queries: list[np.ndarray]) -> None:
    """The same vectors and queries three ways, in one run: ratios hold even on a busy machine."""
    from clipdesk.search.vector_index import VectorIndex

    rows = len(vectors16)
    index = VectorIndex.from_vectors(np.arange(rows), vectors16)
    vectors32 = vectors16.astype(np.float32)
    index.search(queries[0], 20)
    print(f"same {rows:,} vectors, k=20:")
    print(f"  two-pass int8 index (1.05 kB/photo):   {latencies(lambda q: index.search(q, 20), queries)}")
    print(f"  float16 blocks in numpy (1.02 kB):     "
          f"{latencies(lambda q: float16_blocked_top_k(vectors16, q, 20), queries)}")
    print(f"  float32 matrix in numpy (2.05 kB):     "
          f"{latencies(lambda q: np.argpartition(vectors32 @ q, rows - 20)[rows - 20:], queries)}")


def latencies(function, inputs) -> str:
    """Wall-clock and process CPU time per input of function(input), as percentiles.

    CPU time (all threads) is what a busy shared machine distorts least: on an idle machine a query
    takes at most that long, and about half of it when both cores work on it.
    """
    wall, cpu = [], []
    for item in inputs:
        started, started_cpu = time.perf_counter(), time.process_time()
        function(item)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return f"wall {percentiles(wall)}   cpu p50 {statistics.median(cpu) * 1e3:6.1f} ms"


def resident_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cold_start(home: Path, package: Path, runs: int) -> list[float]:
    command = [sys.executable, "-m", "clipdesk", "search", "a dog on a beach", "-k", "20", "--json",
               "--model", str(package)]
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "CLIPDESK_HOME": str(home)})
        samples.append(time.perf_counter() - started)
        if result.returncode != 0 or len(json.loads(result.stdout)) != 20:
            raise SystemExit(f"clipdesk search failed: {result.stderr.strip()}")
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=10_000, help="photos in the small library (cold start)")
    parser.add_argument("--text-model", choices=sorted(TEXT_MODELS), default="vit-b32")
    parser.add_argument("--vector-queries", type=int, default=60)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--compare-rows", type=int, default=200_000,
                        help="rows for the design comparison (0: skip)")
    parser.add_argument("--no-rebuild", action="store_true", help="skip timing a rebuild from the database")
    parser.add_argument("--cache", type=Path,
                        default=Path(platformdirs.user_cache_dir("clipdesk-benchmarks")) / "search")
    args = parser.parse_args()

    from clipdesk.runtime.package import load_package

    package = model_package(args.cache, args.text_model)
    from clipdesk.library.store import embedding_model_key

    model_key = embedding_model_key(load_package(package))
    home, small_home = args.cache / f"library-{args.rows}", args.cache / f"library-{args.small_rows}"
    build_library(small_home, args.small_rows, model_key)
    build_library(home, args.rows, model_key)

    os.environ["CLIPDESK_HOME"] = str(home)
    from clipdesk.library.store import Library
    from clipdesk.runtime.encoders import ClipModel
    from clipdesk.search.searcher import Searcher

    print(f"library: {args.rows:,} photos x {DIM} dims; text tower: {args.text_model}; cpus: {os.cpu_count()}; "
          f"load average {os.getloadavg()[0]:.1f}")
    # A yardstick for how busy the machine is: shared/docs/stack-notes.md measured 4.5-6 ms for this on an
    # idle 2-core machine. Scale the figures below by it when the machine is shared.
    print(f"yardstick, numpy float32 100k x {DIM} matrix-vector product (idle machine: 4.5-6 ms):\n"
          f"  {yardstick()}")
    with Library() as library:
        clip = ClipModel(load_package(package), device="cpu")
        if not args.no_rebuild:
            rebuilding = Searcher(library, clip, snapshots=False)
            before = resident_mb()
            load = timed(rebuilding.refresh)[0]
            print(f"rebuild from the database: {load:.1f} s ({args.rows / load:,.0f} vectors/s); process "
                  f"resident +{(resident_mb() - before) / 1e3:.2f} GB after it, "
                  f"peak {resident_mb('VmHWM') / 1e3:.2f} GB")
            del rebuilding
        Searcher(library, clip).refresh()  # saves the snapshot if there is none yet
        searcher = Searcher(library, clip, resident=True)  # as the app opens it
        opened = timed(searcher.refresh)[0]
        index = searcher.index
        first = timed(lambda: index.search(np.ones(DIM, np.float32) / np.sqrt(DIM), 20))[0]
        print(f"open the saved snapshot: {opened:.2f} s; first search after it (reads the pages): {first:.2f} s")
        print(f"vectors in memory: {index.memory_bytes / 1e9:.3f} GB ({index.memory_bytes / len(index):.0f} bytes "
              "per photo)")

        rng = np.random.default_rng(1)
        ids = index.ids
        vectors = [index.vectors([photo_id])[0] for photo_id in rng.choice(ids, args.vector_queries // 2)]
        vectors = [v + 0.5 * rng.standard_normal(DIM).astype(np.float32) / np.sqrt(DIM) for v in vectors]
        vectors += list(clip.text.encode(QUERIES[:args.vector_queries - len(vectors)]))
        vectors = [(v / np.linalg.norm(v)).astype(np.float32) for v in vectors]
        index.search(vectors[0], 20)  # the first call creates the ONNX Runtime session
        candidates = [len(index._candidates(v, 20, None)) for v in vectors[:10]]
        print(f"rows scored exactly in pass 2 (k=20): median {statistics.median(candidates):.0f}, "
              f"max {max(candidates)}")
        print(f"index search, k=20:             {latencies(lambda v: index.search(v, 20), vectors)}")
        print(f"search from a vector (+ paths): "
              f"{latencies(lambda v: library.photo_paths(index.search(v, 20)[0]), vectors)}")
        clip.text.encode(["warm up"])
        print(f"text encoder alone:             {latencies(lambda q: clip.text.encode([q]), QUERIES)}")
        print(f"text query end to end:          {latencies(lambda q: searcher.search(q, 20), QUERIES)}")
        # About a fifth of the library passes each date filter.
        print(f"+ a new date filter each time:  "
              f"{latencies(lambda i: searcher.search(f'{QUERIES[i]} date:{2000 + i}..{2004 + i}', 20), range(10))}")
        print(f"+ the same date filter:         "
              f"{latencies(lambda q: searcher.search(q + ' date:2010..2014', 20), QUERIES[:10])}")

        if args.compare_rows:
            compare_designs(index.vectors(ids[:args.compare_rows]).astype(np.float16), vectors[:20])

    startup = timed(lambda: subprocess.run([sys.executable, "-c", "import clipdesk.cli"], check=True), 3)
    print(f"python + import clipdesk.cli:   {statistics.median(startup):.2f} s")
    small = cold_start(small_home, package, args.cold_runs)
    print(f"cold start, `clipdesk search` on {args.small_rows:,} photos: median {statistics.median(small):.2f} s "
          f"({', '.join(f'{s:.2f}' for s in small)})")
    large = cold_start(home, package, args.cold_runs)
    print(f"cold start, `clipdesk search` on {args.rows:,} photos: median {statistics.median(large):.2f} s "
          f"({', '.join(f'{s:.2f}' for s in large)})")


if __name__ == "__main__":
    main()
