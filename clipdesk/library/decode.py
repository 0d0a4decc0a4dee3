"""One read and one decode per photo: content hash, EXIF fields, thumbnail and the model's input.

The file is read into memory once; the hash comes from those bytes, and one `Image.open` of them
gives the header (size and EXIF, checked against the pixel limit before any pixel is decoded), then
the pixels. JPEGs decode in Pillow's draft mode, scaled by 1/2, 1/4 or 1/8 to the smallest size that
still serves both the thumbnail (its longer side) and the model input (its shorter side): a
12-megapixel photo is never decoded at full size, and a 500 x 375 one is halved for the 64 px
default model.

A photo that cannot be indexed raises `PhotoError` with a reason for people. `retry` tells whether the
cause may go away by itself (file busy, vanished, unreadable), so the next run tries again even when
the file looks unchanged; a damaged or refused file is not retried until it changes.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from clipdesk.library.exif import exif_date, read_exif, tiff_exif
from clipdesk.library.records import PhotoMetadata
from clipdesk.library.thumbnails import THUMBNAIL_MIN_SIZE, encode_thumbnail
from clipdesk.runtime.heif import heif_problem, register_heif_decoder
from clipdesk.runtime.raw import RawError, decode_raw
from clipdesk.runtime.preprocess import DECODE_ERRORS, damaged_file_reason, decode_opened, preprocess

# Pillow itself refuses images above twice its MAX_IMAGE_PIXELS at open; the library uses that bound.
MAX_PIXELS = 2 * Image.MAX_IMAGE_PIXELS
MAX_FILE_BYTES = 512 * 1024 * 1024
# JPEGs decode straight to a fraction of their size (draft); other formats decode whole, at 3 bytes a pixel
# and more while they are converted. Above this they are refused rather than let a laptop swap: 100 MP
# (10,000 x 10,000) is past any single-shot camera's TIFF or PNG, about 300 MB decoded.
DRAFT_FORMATS = frozenset({"JPEG", "MPO"})
FULL_DECODE_MAX_PIXELS = 100_000_000
# Between MAX_IMAGE_PIXELS and MAX_PIXELS Pillow only warns; the limit here is enforced explicitly
# before any decode, so the warning would be noise on the terminal.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

_HASH_CHUNK = 1 << 20  # bytes read at a time when a file is only hashed
_HEADER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError)
_SWAPPED_ORIENTATIONS = {5, 6, 7, 8}  # rotated by 90 degrees: displayed width is the stored height


class PhotoError(Exception):
    def __init__(self, reason: str, retry: bool = False):
        super().__init__(reason)
        self.reason, self.retry = reason, retry


@dataclass(frozen=True)
class FileContent:
    data: bytes
    size: int
    mtime_ns: int
    hash: str  # SHA-256, hex


@dataclass(frozen=True)
class DecodedPhoto:
    metadata: PhotoMetadata
    pixels: np.ndarray  # float32 (3, R, R), the model's input
    thumbnail: bytes  # JPEG, for the thumbnail cache (the indexer stores a batch's at once)
    decoded_size: tuple[int, int]  # what was actually decoded (smaller than the photo after a JPEG draft)


def read_file(path: bytes, keep_data: bool = True) -> FileContent:
    """The file's bytes, read once, with the stat they belong to. `keep_data` False (videos, which may be
    gigabytes): only hashed, in chunks, and `data` stays empty."""
    digest, data = hashlib.sha256(), b""
    try:
        # O_NONBLOCK: a pipe that took a photo's name since the scan must not hang the run.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with open(fd, "rb", buffering=0) as handle:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                raise PhotoError("not a regular file; never opened for reading", retry=True)
            if keep_data and before.st_size > MAX_FILE_BYTES:
                raise PhotoError(f"file too large ({before.st_size / 2**20:,.0f} MiB; the limit is "
                                 f"{MAX_FILE_BYTES / 2**20:,.0f} MiB)")
            if keep_data:
                data = handle.readall()
                digest.update(data)
                length = len(data)
            else:
                length = 0
                while chunk := handle.read(_HASH_CHUNK):
                    digest.update(chunk)
                    length += len(chunk)
            after = os.fstat(fd)
    except FileNotFoundError:
        raise PhotoError("file vanished during indexing", retry=True) from None
    except PermissionError:
        raise PhotoError("permission denied: clipdesk may not read this file", retry=True) from None
    except OSError as exc:
        raise PhotoError(f"cannot read file ({exc.strerror or type(exc).__name__})", retry=True) from None
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or length != after.st_size:
        raise PhotoError("file changed while being read; it is retried on the next run", retry=True)
    return FileContent(data, after.st_size, after.st_mtime_ns, digest.hexdigest())


def _bomb_reason(pixels: int | None, limit: int) -> str:
    amount = f"{pixels:,} pixels" if pixels else "too many pixels"
    return f"{amount}, over the limit of {limit:,}: refused as a possible decompression bomb, not decoded"


def _read_header(image: Image.Image, max_pixels: int) -> PhotoMetadata:
    width, height = image.size
    if width * height > max_pixels:
        raise PhotoError(_bomb_reason(width * height, max_pixels))
    if image.format not in DRAFT_FORMATS and width * height > FULL_DECODE_MAX_PIXELS:
        raise PhotoError(f"{width * height:,} pixels in a {image.format or 'this'} image: more than the "
                         f"{FULL_DECODE_MAX_PIXELS:,} clipdesk decodes whole (a {image.format or 'file'} has no "
                         f"reduced decoding; it would need about {width * height * 3 / 1e6:,.0f} MB of memory "
                         "and more), so it is not indexed")
    fields = read_exif(image)
    if fields["orientation"] in _SWAPPED_ORIENTATIONS:
        width, height = height, width
    return PhotoMetadata(width=width, height=height, format=image.format, **fields)


def _raw_exif(data: bytes, preview_jpeg: bytes | None) -> dict:
    """EXIF fields of a camera RAW: most RAWs are TIFF inside (their first directory is read without
    decoding anything); CR3 and RAF are not, and their embedded preview JPEG carries the camera's EXIF."""
    fields = tiff_exif(data)
    if not (fields["camera_model"] or fields["taken_at"]) and preview_jpeg:
        try:
            with Image.open(io.BytesIO(preview_jpeg)) as opened:
                fields = read_exif(opened)
        except (UnidentifiedImageError, *_HEADER_ERRORS):
            pass
    return fields


def _decode_raw(content: FileContent, raw_format: str, resolution: int) -> tuple[PhotoMetadata, Image.Image]:
    try:
        raw = decode_raw(content.data, (max(resolution, THUMBNAIL_MIN_SIZE), resolution))
    except RawError as exc:
        raise PhotoError(str(exc)) from None
    fields = _raw_exif(content.data, raw.preview_jpeg)
    fields["orientation"] = raw.orientation  # LibRaw's reading of the file is what turned the pixels
    fields["taken_at"] = fields["taken_at"] or exif_date(raw.timestamp, None)
    width, height = raw.size
    return PhotoMetadata(width=width, height=height, format=raw_format, **fields), raw.image


def decode_photo(content: FileContent, resolution: int, mean, std, max_pixels: int = MAX_PIXELS, *,
                 resize: str = "shortest", interpolation: str = "bicubic", raw_format: str | None = None) -> DecodedPhoto:
    """Metadata, thumbnail and model input of one photo's bytes (resize, interpolation: preprocess's).
    `raw_format` (DNG, NEF, ...) sends a camera RAW file to LibRaw instead of Pillow."""
    if not content.data:
        raise PhotoError("empty file (0 bytes)")
    if raw_format:
        metadata, image = _decode_raw(content, raw_format, resolution)
        pixels = preprocess(image, resolution, mean, std, resize=resize, interpolation=interpolation)
        return DecodedPhoto(metadata, pixels, encode_thumbnail(image), image.size)
    register_heif_decoder()
    try:
        # One open serves the header (size, EXIF) and the pixels: opening costs ~0.2 ms a photo.
        with Image.open(io.BytesIO(content.data)) as opened:
            metadata = _read_header(opened, max_pixels)
            try:
                # The model needs the shorter side (it crops a square), the thumbnail the longer one.
                image = decode_opened(opened, draft_size=(max(resolution, THUMBNAIL_MIN_SIZE), resolution))
            except DECODE_ERRORS as exc:
                raise PhotoError(damaged_file_reason(exc)) from None
    except UnidentifiedImageError:
        problem = heif_problem(content.data)
        if problem:  # Pillow hides libheif's reason (a truncated file, a missing box) behind "cannot identify"
            raise PhotoError(f"damaged HEIF file ({problem})") from None
        raise PhotoError("not an image, or an image format clipdesk cannot decode") from None
    except Image.DecompressionBombError as exc:
        match = re.search(r"\((\d+) pixels\)", str(exc))
        raise PhotoError(_bomb_reason(int(match.group(1)) if match else None, max_pixels)) from None
    except _HEADER_ERRORS as exc:
        raise PhotoError(f"damaged image header ({' '.join(str(exc).split()) or type(exc).__name__})") from None
    pixels = preprocess(image, resolution, mean, std, resize=resize, interpolation=interpolation)
    return DecodedPhoto(metadata, pixels, encode_thumbnail(image), image.size)
