"""Does wrapping short queries in a prompt template help search? Text-to-image retrieval with labels as
queries, through the run side (ONNX Runtime), with `clipdesk search --prompt` templates.

    python benchmarks/search_prompt_wrapping.py --model resources/models/clipdesk-emoji-tiny \
        --manifest data/eval-styles/unseen.jsonl [--kind emoji] [--prompt T]...

Each distinct `label` of the manifest is one query, wrapped as the searcher wraps text terms
(searcher.wrap_prompt); every image of the manifest is ranked by cosine. Prints, per template, the mean
average precision over queries (the images of the query's label are the relevant ones) and how often
the first result is one of them. Without --prompt: no template, and the paper's usual ones.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zero_shot_eval import read_rows  # noqa: E402 - the benchmarks share the manifest reader

from clipdesk.runtime.encoders import load_model  # noqa: E402
from clipdesk.search.searcher import wrap_prompt  # noqa: E402

DEFAULT_PROMPTS = (None, "a photo of {}.", "a photo of a {}.", "an emoji of {}.")


def retrieval(image_vectors: np.ndarray, query_vectors: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """(mean average precision, share of queries whose first result is relevant); targets[i] is the
    query index image i belongs to."""
    scores = query_vectors @ image_vectors.T
    relevant = targets[np.argsort(-scores, axis=1, kind="stable")] == np.arange(len(query_vectors))[:, None]
    hits = np.cumsum(relevant, axis=1)
    precision_at_hits = relevant * hits / np.arange(1, relevant.shape[1] + 1)
    average_precision = precision_at_hits.sum(axis=1) / np.maximum(relevant.sum(axis=1), 1)
    return float(average_precision.mean()), float(relevant[:, 0].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model package folder or registered name")
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--kind", choices=["emoji", "icon"])
    parser.add_argument("--prompt", action="append", help="a template with {} (repeatable; 'none' = as typed)")
    args = parser.parse_args()
    prompts = [None if p == "none" else p for p in args.prompt] if args.prompt else list(DEFAULT_PROMPTS)
    rows = read_rows(args.manifest, args.kind)
    if not rows:
        raise SystemExit("no rows to evaluate")
    model = load_model(args.model, device="cpu")
    images = model.image.encode_files([args.manifest.parent / row["image"] for row in rows], batch_size=64)
    labels = sorted({row["label"] for row in rows})
    position = {label: number for number, label in enumerate(labels)}
    targets = np.array([position[row["label"]] for row in rows])
    print(f"{args.manifest} ({args.kind or 'all'}): {len(labels):,} queries over {len(rows):,} images; "
          f"model {args.model}")
    for prompt in prompts:
        queries = model.text.encode([wrap_prompt(label, prompt) for label in labels])
        mean_ap, first = retrieval(images, queries, targets)
        print(f"  {prompt or '(as typed)':<22} mAP {mean_ap:.3f}   first result right {100 * first:5.1f} %")


if __name__ == "__main__":
    main()
