"""What a new model package is checked on before it is accepted: drawings that go through the real
preprocessing, captions that exercise the tokenizer's edges, and how close is close enough. Shared by the
PyTorch export (clipdesk/model/onnx_export.py) and the torch-free import (clipdesk/checkpoint/importer.py)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

# Agreement required between a reference in fp32 (PyTorch, or the fp32 graphs) and ONNX Runtime on the
# verification inputs. fp32 must
# match to float rounding; fp16 weights and int8 quantisation change the numbers, so they are held
# to a cosine similarity instead.
MAX_ABS_DIFF_FP32 = 1e-3
MIN_COSINE = {"fp32": 0.99999, "fp16": 0.999, "int8": 0.95}

VERIFY_CAPTIONS = [
    "a photo of a dog",
    "kids on a beach at sunset",
    "",
    "a cat face emoji 😺",
    "東京の夜景",
    "an extremely long caption " + "that keeps going " * 30,
]


def verification_images(count: int = 4, size: int = 256) -> list[Image.Image]:
    """Deterministic drawings (gradients, shapes, lines) that go through the real preprocessing."""
    rng = np.random.default_rng(1234)
    images = []
    for index in range(count):
        ramp = np.linspace(0, 255, size, dtype=np.float32)
        base = np.stack([np.add.outer(ramp * (c + 1) / 3, ramp[::-1] * index / count) % 256 for c in range(3)], -1)
        image = Image.fromarray(base.astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x0, y0 = rng.integers(0, size - 40, 2)
            x1, y1 = x0 + rng.integers(20, 120), y0 + rng.integers(20, 120)
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            shape = (draw.ellipse, draw.rectangle)[int(rng.integers(0, 2))]
            shape((int(x0), int(y0), int(x1), int(y1)), fill=colour)
        # Non-square on purpose: exercises resize-shortest-side and the center crop.
        images.append(image.resize((size + 64 * index, size)))
    return images


def compare(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """(max abs difference, min cosine similarity) of two batches of vectors."""
    diff = float(np.abs(reference - candidate).max())
    cosine = (reference * candidate).sum(-1) / (
        np.linalg.norm(reference, axis=-1) * np.linalg.norm(candidate, axis=-1) + 1e-12)
    return diff, float(cosine.min())
