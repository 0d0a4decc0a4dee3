"""Training views of an image, and the pixel normalisation shared with the run side.

Augmentation stays mild because the captions must stay true: a random resized crop that keeps most of
the picture and small brightness, contrast and saturation changes. No hue shift (captions name
colours) and no horizontal flip (captions may say left and right).

Images travel as 8-bit RGB until they reach the model; `NormalisationTable` turns them into model
input through a table taken from the run side's own `preprocess`, so training sees exactly the values
that inference will.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageEnhance

from clipdesk.runtime.preprocess import preprocess

JITTER = 0.1  # brightness, contrast and saturation each scaled by a factor in [0.9, 1.1]
ASPECT_RANGE = (3 / 4, 4 / 3)


def random_resized_crop(image: Image.Image, size: int, rng: np.random.Generator,
                        min_scale: float = 0.7) -> Image.Image:
    """A square `size` view of a random box covering min_scale..1 of the area (torchvision's method)."""
    width, height = image.size
    area = width * height
    log_low, log_high = math.log(ASPECT_RANGE[0]), math.log(ASPECT_RANGE[1])
    for _ in range(10):
        target = area * rng.uniform(min_scale, 1.0)
        aspect = math.exp(rng.uniform(log_low, log_high))
        box_w = int(round(math.sqrt(target * aspect)))
        box_h = int(round(math.sqrt(target / aspect)))
        if 0 < box_w <= width and 0 < box_h <= height:
            left = int(rng.integers(0, width - box_w + 1))
            top = int(rng.integers(0, height - box_h + 1))
            return image.resize((size, size), Image.Resampling.BICUBIC, box=(left, top, left + box_w, top + box_h))
    # Extreme aspect ratios: the largest centred square, as at inference.
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.resize((size, size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side))


def colour_jitter(image: Image.Image, rng: np.random.Generator, strength: float = JITTER) -> Image.Image:
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        image = enhancer(image).enhance(float(rng.uniform(1 - strength, 1 + strength)))
    return image


def training_view(image: Image.Image, size: int, rng: np.random.Generator, min_scale: float) -> np.ndarray:
    """(size, size, 3) uint8: crop, resize and jitter an upright RGB image."""
    view = colour_jitter(random_resized_crop(image, size, rng, min_scale), rng)
    return np.asarray(view, dtype=np.uint8)


class NormalisationTable:
    """8-bit RGB (N, R, R, 3) → model input (N, 3, R, R) float32, identical to the run side's preprocess."""

    def __init__(self, mean, std):
        # A 16 x 16 image holding every level 0..255 once, in all channels, goes through the run side's
        # preprocess unchanged in size, so its output is that function's value for each level.
        levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
        probe = Image.fromarray(np.stack([levels] * 3, axis=-1), "RGB")
        self.table = torch.from_numpy(preprocess(probe, 16, mean, std).reshape(3, 256).copy())

    def __call__(self, pixels: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        table = self.table.to(device)
        pixels = pixels.to(device).long()
        return torch.stack([table[channel][pixels[..., channel]] for channel in range(3)], dim=1)
