"""Thumbnails: 224-256 px JPEGs in the cache folder, keyed by the photo's content hash.

Keyed by content rather than path, a moved photo keeps its thumbnail and identical copies share one.
The cache may be deleted at any time: `ensure_thumbnail` makes a missing one again.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

from PIL import Image

from clipdesk import paths
from clipdesk.library.pathnames import PathInput
from clipdesk.runtime.preprocess import load_image

THUMBNAIL_SIZE = 256  # the longer side, in pixels
# ... or as little as this when a JPEG decoded at reduced scale (draft) lands between the two: a 500 px
# photo halved gives a 250 px thumbnail at no resize, where a full decode to reach 256 costs ~3x the
# decode (most photo sets hold such sizes; the grid draws thumbnails scaled anyway).
THUMBNAIL_MIN_SIZE = 224
JPEG_QUALITY = 85


def thumbnail_path(content_hash: str) -> Path:
    return paths.thumbnails_dir() / content_hash[:2] / f"{content_hash}.jpg"


def thumbnail_size(width: int, height: int) -> tuple[int, int]:
    """Fits in THUMBNAIL_SIZE x THUMBNAIL_SIZE, aspect kept, never enlarged."""
    scale = min(1.0, THUMBNAIL_SIZE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def save_thumbnail(image: Image.Image, content_hash: str) -> Path:
    """Write the thumbnail of an upright RGB image unless the cache has it; returns its path."""
    target = thumbnail_path(content_hash)
    if target.exists():
        return target
    size = thumbnail_size(*image.size)
    # Bilinear (antialiased when shrinking, like every Pillow filter) costs half of bicubic here.
    small = image if size == image.size else image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=JPEG_QUALITY)
    # Written aside, then renamed: a reader never sees half a file, and threads never share a temporary.
    temporary = target.with_name(f"{target.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        temporary.write_bytes(buffer.getvalue())
    except FileNotFoundError:  # the first thumbnail in its folder (mkdir on every one costs ~0.1 ms)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(buffer.getvalue())
    os.replace(temporary, target)
    return target


def ensure_thumbnail(photo_path: PathInput, content_hash: str) -> Path:
    """The thumbnail of an indexed photo, made again from the file when the cache lost it.
    Raises ClipdeskError (one line, naming the file) when the file cannot be decoded."""
    target = thumbnail_path(content_hash)
    if target.exists():
        return target
    return save_thumbnail(load_image(os.fsdecode(photo_path), draft_size=(THUMBNAIL_MIN_SIZE, 1)), content_hash)
