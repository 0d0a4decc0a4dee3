"""Real photos for tests that make other formats from them: ../shared/data/photos/coco-mini."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos" / "coco-mini" / "images"


def real_photo(index: int = 0) -> Image.Image:
    """The index-th coco-mini photo (by name), as RGB; a missing folder fails the test."""
    files = sorted(PHOTOS.glob("*.jpg"))
    if not files:
        pytest.fail(f"no photos in {PHOTOS}", pytrace=False)
    with Image.open(files[index]) as photo:
        return photo.convert("RGB")
