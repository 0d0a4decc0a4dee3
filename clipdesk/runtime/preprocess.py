"""Image decoding and CLIP's preprocessing, pixel for pixel as OpenAI's torchvision transform does it.

The reference is Resize(shortest side, bicubic) -> CenterCrop -> RGB -> ToTensor -> Normalize on a PIL
image. Here the image is made RGB first (orientation, alpha on white, odd modes); for 8-bit images that
changes nothing, since PIL resizes each channel alike.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from clipdesk.errors import ClipdeskError
from clipdesk.runtime.heif import register_heif_decoder
from clipdesk.runtime.raw import is_raw

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

_SIXTEEN_BIT_GRAY = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
# Failures PIL's decoders raise on damaged or unusual files (struct.error and IndexError come from
# malformed headers in some plugins).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, Image.DecompressionBombError)


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except DECODE_ERRORS + (TypeError,):
        return 1  # unreadable EXIF: show the pixels as stored rather than refuse the photo


def _to_8bit_gray(image: Image.Image) -> Image.Image:
    """L image from a 16-bit ("I;16*", and "I", which PIL also uses for 16-bit files) or float ("F") one.

    PIL's own convert clips these to 0..255 instead of scaling, which turns most photos white.
    """
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        # Float images come either normalised to 0..1 or on the 8-bit scale.
        values = np.nan_to_num(values)
        scale = 255.0 if values.max(initial=0.0) <= 1.0 else 1.0
    else:
        scale = 255.0 / 65535.0
    return Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), "L")


def to_rgb(image: Image.Image) -> Image.Image:
    """The image upright, in RGB, transparent areas on white. Returns `image` itself when already so."""
    if _orientation(image) != 1:
        image = ImageOps.exif_transpose(image)
    if image.mode in _SIXTEEN_BIT_GRAY or image.mode == "F":
        image = _to_8bit_gray(image)
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


def draft_request(size: tuple[int, int], draft_size: int | tuple[int, int]) -> tuple[int, int]:
    """The size to ask Pillow's draft for: it keeps width >= asked width and height >= asked height."""
    longer, shorter = (draft_size, draft_size) if isinstance(draft_size, int) else draft_size
    width, height = size
    return (longer, shorter) if width >= height else (shorter, longer)


def load_image(source: str | os.PathLike[str] | BinaryIO, *,
               draft_size: int | tuple[int, int] | None = None) -> Image.Image:
    """Decode an image file into an upright RGB image with transparent areas on white.

    `draft_size` lets JPEG decoding scale down (by 1/2, 1/4 or 1/8) while keeping both sides at least
    that long (an int), or the longer side at least draft_size[0] and the shorter at least
    draft_size[1] (a pair): several times faster for large photos, but the pixels then differ slightly
    from a full decode. Leave it None for results identical to the reference.
    """
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "<stream>")
    if isinstance(source, (str, os.PathLike)) and is_raw(name):
        return _load_raw(name, draft_size)
    register_heif_decoder()
    try:
        with Image.open(source) as image:
            return decode_opened(image, draft_size=draft_size)
    except FileNotFoundError:
        raise ClipdeskError(f"cannot read image {name}: file not found") from None
    except UnidentifiedImageError:
        raise ClipdeskError(f"cannot read image {name}: not an image, or a format clipdesk cannot decode") from None
    except Image.DecompressionBombError:
        raise ClipdeskError(f"cannot read image {name}: too many pixels to decode safely") from None
    except DECODE_ERRORS as error:
        raise ClipdeskError(f"cannot read image {name}: {damaged_file_reason(error)}") from None


def _load_raw(name: str, draft_size: int | tuple[int, int] | None) -> Image.Image:
    """A camera RAW's preview or half-size demosaic (raw.py); the full demosaic is never made here."""
    from clipdesk.runtime.raw import RawError, decode_raw

    longer, shorter = (0, 0) if draft_size is None else (
        (draft_size, draft_size) if isinstance(draft_size, int) else draft_size)
    try:
        with open(name, "rb") as handle:
            return decode_raw(handle.read(), (longer, shorter)).image
    except FileNotFoundError:
        raise ClipdeskError(f"cannot read image {name}: file not found") from None
    except (OSError, RawError) as error:
        raise ClipdeskError(f"cannot read image {name}: {error}") from None


def decode_opened(image: Image.Image, *, draft_size: int | tuple[int, int] | None = None) -> Image.Image:
    """load_image's pixels from an image already opened (its header read for other uses); raises
    what Pillow raises (DECODE_ERRORS)."""
    if draft_size is not None:
        image.draft(image.mode, draft_request(image.size, draft_size))
    image.load()
    return to_rgb(image)


def damaged_file_reason(error: BaseException) -> str:
    return f"damaged or unsupported file ({' '.join(str(error).split()) or type(error).__name__})"


_RESAMPLING = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def _resize_shortest_side(image: Image.Image, size: int, interpolation: str = "bicubic") -> Image.Image:
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    if short == size:
        return image
    # torchvision truncates the long side, it does not round it.
    new_long = int(size * long / short)
    new_size = (size, new_long) if width <= height else (new_long, size)
    return image.resize(new_size, _RESAMPLING[interpolation])


def _fit(image: Image.Image, size: int, resize: str, interpolation: str) -> Image.Image:
    """A size x size image: the shorter side resized then a centre crop (CLIP's), or both sides resized
    ("squash": the whole picture, its aspect lost; some exports are made for it)."""
    if resize == "squash":
        return image if image.size == (size, size) else image.resize((size, size), _RESAMPLING[interpolation])
    return _center_crop(_resize_shortest_side(image, size, interpolation), size)


def _center_crop(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    # torchvision's offsets: Python's round, so exact halves go to the even number.
    top = int(round((height - size) / 2.0))
    left = int(round((width - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


@functools.lru_cache(maxsize=16)
def _normalisation_table(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(3, 256) float32: the normalised value of each 8-bit level per channel.

    Computed with the same float32 operations as ToTensor + Normalize (x / 255, then (x - mean) / std),
    so a table lookup gives bit-identical results at a fraction of the cost.
    """
    levels = np.arange(256, dtype=np.float32) / np.float32(255)
    mean32 = np.asarray(mean, dtype=np.float32)[:, None]
    std32 = np.asarray(std, dtype=np.float32)[:, None]
    return (levels[None, :] - mean32) / std32


def preprocess(image: Image.Image, resolution: int, mean: Sequence[float], std: Sequence[float], *,
               resize: str = "shortest", interpolation: str = "bicubic") -> np.ndarray:
    """CLIP's input for one image: float32 array (3, resolution, resolution)."""
    out = np.empty((3, resolution, resolution), dtype=np.float32)
    _preprocess_into(out, image, resolution, mean, std, resize, interpolation)
    return out


def preprocess_batch(images: Sequence[Image.Image], resolution: int, mean: Sequence[float], std: Sequence[float], *,
                     resize: str = "shortest", interpolation: str = "bicubic") -> np.ndarray:
    """CLIP's input for several images: float32 array (N, 3, resolution, resolution)."""
    out = np.empty((len(images), 3, resolution, resolution), dtype=np.float32)
    for target, image in zip(out, images):
        _preprocess_into(target, image, resolution, mean, std, resize, interpolation)
    return out


def _preprocess_into(out: np.ndarray, image: Image.Image, resolution: int, mean: Sequence[float],
                     std: Sequence[float], resize: str, interpolation: str) -> None:
    if len(mean) != 3 or len(std) != 3:
        raise ValueError("mean and std need one value per RGB channel")
    pixels = np.asarray(_fit(to_rgb(image), resolution, resize, interpolation), dtype=np.uint8)
    table = _normalisation_table(tuple(map(float, mean)), tuple(map(float, std)))
    for channel in range(3):
        np.take(table[channel], pixels[..., channel], out=out[channel])
