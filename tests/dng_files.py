"""DNG files made by hand with tifffile: a real photo mosaicked into an RGGB colour filter array, with or
without an embedded JPEG preview, and the EXIF a camera writes. LibRaw reads them like a camera's DNG.

tifffile cannot write JPEG-compressed strips without imagecodecs, so the preview page is written
uncompressed and then patched: its one strip points to JPEG bytes appended to the file, Compression = 7.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

WHITE_LEVEL = 4095
# XYZ (D65) -> linear sRGB: as the DNG's ColorMatrix1 it makes the "camera" colours linear sRGB.
XYZ_TO_SRGB = (3.2406, -1.5372, -0.4986, -0.9689, 1.8758, 0.0415, 0.0557, -0.2040, 1.0570)
D65 = 21


def _rationals(values, signed: bool = False) -> list[int]:
    pairs = []
    for value in values:
        pairs += [int(round(value * 10000)), 10000]
    return pairs


def mosaic(photo: np.ndarray) -> np.ndarray:
    """RGGB Bayer samples, 12-bit linear, of an 8-bit sRGB photo (even width and height)."""
    linear = (photo.astype(np.float32) / 255) ** 2.2 * WHITE_LEVEL
    cfa = np.empty(photo.shape[:2], np.uint16)
    cfa[0::2, 0::2] = linear[0::2, 0::2, 0]
    cfa[0::2, 1::2] = linear[0::2, 1::2, 1]
    cfa[1::2, 0::2] = linear[1::2, 0::2, 1]
    cfa[1::2, 1::2] = linear[1::2, 1::2, 2]
    return cfa


def make_dng(path: Path, photo: Image.Image, *, preview: int | None = None, orientation: int = 1,
             make: str = "Clipdesk", model: str = "Test Camera", taken: str = "2021:05:06 07:08:09") -> Path:
    """A DNG of `photo` (RGB). preview: the longer side of an embedded JPEG preview, or None for none."""
    pixels = np.asarray(photo.convert("RGB"))
    height, width = (side - side % 2 for side in pixels.shape[:2])
    pixels = pixels[:height, :width]
    camera_tags = [(271, "s", 0, make, True), (272, "s", 0, model, True), (274, "H", 1, orientation, True),
                   (306, "s", 0, taken, True), (50706, "B", 4, (1, 4, 0, 0), True),
                   (50708, "s", 0, f"{make} {model}", True), (50721, 10, 9, _rationals(XYZ_TO_SRGB), True),
                   (50778, "H", 1, D65, True), (50728, 5, 3, _rationals((1, 1, 1)), True)]
    raw_tags = [(33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True),
                (50717, "H", 1, WHITE_LEVEL, True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    jpeg = None
    with tifffile.TiffWriter(path) as tif:
        if preview:
            small = Image.fromarray(pixels)
            small.thumbnail((preview, preview))
            buffer = io.BytesIO()
            small.save(buffer, "JPEG", quality=90)
            jpeg = buffer.getvalue()
            stand_in = np.zeros((small.height, small.width, 3), np.uint8)  # replaced by the JPEG below
            tif.write(stand_in, photometric="rgb", subfiletype=1, subifds=1, rowsperstrip=small.height,
                      extratags=camera_tags, metadata=None)
            tif.write(mosaic(pixels), photometric=32803, subfiletype=0, extratags=raw_tags, metadata=None)
        else:
            tif.write(mosaic(pixels), photometric=32803, subfiletype=0, extratags=camera_tags + raw_tags,
                      metadata=None)
    if jpeg:
        with tifffile.TiffFile(path) as tiff:
            tags = tiff.pages[0].tags
            offsets = {name: tags[name].valueoffset for name in ("Compression", "StripOffsets", "StripByteCounts")}
        with open(path, "r+b") as handle:
            end = handle.seek(0, 2)
            handle.write(jpeg)
            for name, value, kind in (("Compression", 7, "<H"), ("StripOffsets", end, "<I"),
                                      ("StripByteCounts", len(jpeg), "<I")):
                handle.seek(offsets[name])
                handle.write(struct.pack(kind, value))
    return path
