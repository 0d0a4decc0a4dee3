"""Zero-shot accuracy of a model package on a labelled manifest, through the run side (ONNX Runtime).

    python benchmarks/zero_shot_eval.py --model resources/models/clipdesk-emoji-tiny \
        --manifest data/emoji-icons/heldout.jsonl [--kind emoji] [--limit 2000]

Classes are the distinct `label` values of the evaluated rows; each class's text embedding is the
normalised mean over the prompt templates (CLIP's ensemble). Prints top-1/top-5 and chance.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

from clipdesk.runtime.encoders import l2_normalize, load_model

TEMPLATES = ("an emoji of a {}.", "a {} icon.", "{}", "a picture of a {}.")


def evaluate(model_dir: str, manifest: Path, kind: str | None, limit: int | None, seed: int = 0) -> dict:
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [row for row in rows if kind is None or row.get("kind") == kind]
    if limit and len(rows) > limit:
        rows = random.Random(seed).sample(rows, limit)
    labels = sorted({row["label"] for row in rows})
    model = load_model(model_dir, device="cpu")
    started = time.perf_counter()
    prompts = [template.format(label) for label in labels for template in TEMPLATES]
    text = model.text.encode(prompts).reshape(len(labels), len(TEMPLATES), -1)
    classes = l2_normalize(text.mean(axis=1))
    images = model.image.encode_files([manifest.parent / row["image"] for row in rows], batch_size=64)
    scores = images @ classes.T
    targets = np.array([labels.index(row["label"]) for row in rows])
    ranked = np.argsort(-scores, axis=1)[:, :5]
    top1 = float(np.mean(ranked[:, 0] == targets))
    top5 = float(np.mean((ranked == targets[:, None]).any(axis=1)))
    return {"manifest": str(manifest), "kind": kind or "all", "images": len(rows), "classes": len(labels),
            "top1": top1, "top5": top5, "chance_top1": 1 / len(labels), "chance_top5": min(1.0, 5 / len(labels)),
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model package folder or registered name")
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--kind", choices=("emoji", "icon"))
    parser.add_argument("--limit", type=int, default=None, help="evaluate a seeded random sample of rows")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = evaluate(args.model, args.manifest, args.kind, args.limit)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['manifest']} [{result['kind']}]: {result['images']} images, {result['classes']} classes: "
              f"top-1 {result['top1']:.1%} (chance {result['chance_top1']:.2%}), "
              f"top-5 {result['top5']:.1%} (chance {result['chance_top5']:.2%})")


if __name__ == "__main__":
    main()
