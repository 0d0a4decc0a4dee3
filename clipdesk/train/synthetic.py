"""A synthetic image-caption set of coloured shapes, for tests, benchmarks and trying the trainer out.

Each image is one shape of one colour at a random position, size and rotation, on a pale background
or on transparency (which the data pipeline composites on white, as the run side does). Captions vary
their wording; the 'label' field ("red circle") is the zero-shot class. Held-out images come from the
same generator with another seed; `unseen` combinations (e.g. "purple star") can be kept out of the
training set entirely to measure generalisation to new compositions.

    python -m clipdesk.train.synthetic OUT_DIR [--train 2000] [--val 400]
writes OUT_DIR/train.jsonl, val.jsonl, labels.txt and the PNG images.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {
    "red": (215, 35, 35), "green": (30, 160, 60), "blue": (35, 80, 220),
    "yellow": (240, 205, 20), "purple": (135, 55, 185), "orange": (245, 130, 15),
}
SHAPES = ("circle", "square", "triangle", "star")
CAPTIONS = ("a {c} {s}", "a drawing of a {c} {s}", "{c} {s}", "a {s} that is {c}", "a {c} {s} on a plain background")


def labels(unseen: tuple[str, ...] = ()) -> list[str]:
    return [f"{c} {s}" for s in SHAPES for c in COLOURS if f"{c} {s}" not in unseen]


def _polygon(shape: str, cx: float, cy: float, radius: float, angle: float) -> list[tuple[float, float]]:
    corners = {"square": 4, "triangle": 3, "star": 10}[shape]
    points = []
    for i in range(corners):
        r = radius * (0.45 if shape == "star" and i % 2 else 1.0)
        theta = angle + 2 * math.pi * i / corners
        points.append((cx + r * math.cos(theta), cy + r * math.sin(theta)))
    return points


def draw_shape(shape: str, colour: str, rng: np.random.Generator, size: int = 96) -> Image.Image:
    transparent = rng.random() < 0.25
    if transparent:
        image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    else:
        grey = int(rng.integers(225, 256))
        image = Image.new("RGB", (size, size), (grey, grey, int(rng.integers(215, 256))))
    draw = ImageDraw.Draw(image)
    radius = rng.uniform(0.22, 0.4) * size
    cx, cy = rng.uniform(radius, size - radius, 2)
    shade = np.clip(np.array(COLOURS[colour]) + rng.integers(-20, 21, 3), 0, 255)
    fill = tuple(int(v) for v in shade) + ((255,) if transparent else ())
    if shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
    else:
        draw.polygon(_polygon(shape, cx, cy, radius, rng.uniform(0, 2 * math.pi)), fill=fill)
    return image


def write_split(out_dir: Path, split: str, count: int, seed: int, allowed: list[str], size: int = 96) -> Path:
    """`count` images of the `allowed` labels, cycling through them; returns the manifest path."""
    rng = np.random.default_rng(seed)
    folder = out_dir / split
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(count):
        label = allowed[index % len(allowed)]
        colour, shape = label.split(" ")
        name = f"{split}/{index:05d}.png"
        draw_shape(shape, colour, rng, size).save(out_dir / name)
        captions = [template.format(c=colour, s=shape) for template in CAPTIONS]
        rows.append({"image": name, "captions": captions, "label": label})
    manifest = out_dir / f"{split}.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return manifest


def write_shapes_dataset(out_dir: Path, train: int = 2000, val: int = 400, seed: int = 0,
                         unseen: tuple[str, ...] = (), size: int = 96) -> dict[str, Path]:
    """train.jsonl and val.jsonl (held-out images of the trained labels), labels.txt (every label);
    with `unseen`, those combinations are left out of both and val_unseen.jsonl holds only them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"train": write_split(out_dir, "train", train, seed, labels(unseen), size),
             "val": write_split(out_dir, "val", val, seed + 1, labels(unseen), size)}
    if unseen:
        paths["val_unseen"] = write_split(out_dir, "val_unseen", max(len(unseen), val // 4), seed + 2, list(unseen),
                                          size)
    paths["labels"] = out_dir / "labels.txt"
    paths["labels"].write_text("\n".join(labels()) + "\n", encoding="utf-8")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic coloured-shapes image-caption set.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--val", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--unseen", action="append", default=[], metavar="'COLOUR SHAPE'",
                        help="a combination kept out of training (repeatable)")
    args = parser.parse_args()
    for split, path in write_shapes_dataset(args.out_dir, args.train, args.val, args.seed, tuple(args.unseen)).items():
        print(f"{split}: {path}")


if __name__ == "__main__":
    main()
