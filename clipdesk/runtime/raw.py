"""Camera RAW files through rawpy (LibRaw): the camera's embedded JPEG preview when it is large enough,
else a half-size demosaic.

A preview is the camera's own rendering and takes milliseconds to decode; a demosaic of a 24-megapixel
sensor takes about a second even at half size (each 2 x 2 block of the colour filter gives one pixel,
so no interpolation is needed). Either way the result is turned upright by LibRaw's orientation
(`sizes.flip`), which is the one LibRaw reads from the RAW's own metadata.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

RAW_EXTENSIONS = (".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2",
                  ".rwl", ".pef", ".srw", ".x3f", ".3fr", ".fff", ".iiq", ".erf", ".mef", ".mos", ".mrw", ".kdc",
                  ".dcr", ".k25")
# LibRaw's flip codes as EXIF orientations (LibRaw uses 0, 3, 5 and 6 only).
_FLIP_TO_ORIENTATION = {0: 1, 3: 3, 5: 8, 6: 6}


class RawError(Exception):
    """A RAW file LibRaw cannot read: unsupported camera, damaged or not RAW at all; the text says which."""


@dataclass(frozen=True)
class RawImage:
    image: Image.Image  # upright RGB
    preview_jpeg: bytes | None  # the embedded preview, when there is one (its EXIF serves RAWs Pillow cannot parse)
    orientation: int  # EXIF orientation equivalent of the file's own (1..8)
    size: tuple[int, int]  # the full image's size as displayed (after orientation)
    source: str  # "preview" (the embedded JPEG) or "demosaic"
    timestamp: str | None  # LibRaw's capture time, "YYYY:MM:DD HH:MM:SS" (EXIF's form), None when unknown


def raw_format(name: str | bytes) -> str | None:
    """The RAW format a file name says ("NEF" for IMG_1.nef), or None for any other file."""
    name = name.decode(errors="replace") if isinstance(name, bytes) else name
    extension = name[name.rfind("."):].lower() if "." in name else ""
    return extension[1:].upper() if extension in RAW_EXTENSIONS else None


def is_raw(name: str | bytes) -> bool:
    return raw_format(name) is not None


def _orient(image: Image.Image, orientation: int) -> Image.Image:
    if orientation == 1:
        return image
    image.getexif()[0x0112] = orientation
    return ImageOps.exif_transpose(image)


def _preview_jpeg(raw) -> bytes | None:
    import rawpy

    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawError, ValueError):  # no preview, or one in a format LibRaw cannot hand out
        return None
    return thumb.data if thumb.format == rawpy.ThumbFormat.JPEG else None


def _preview(jpeg: bytes, min_size: tuple[int, int], orientation: int) -> Image.Image | None:
    """The embedded JPEG preview, upright, when its longer and shorter sides reach min_size; else None."""
    from clipdesk.runtime.preprocess import draft_request

    try:
        with Image.open(io.BytesIO(jpeg)) as opened:
            if max(opened.size) < min_size[0] or min(opened.size) < min_size[1]:
                return None
            opened.draft("RGB", draft_request(opened.size, min_size))
            image = opened.convert("RGB")  # its own EXIF orientation, if any, is the RAW's: applied below once
    except (OSError, SyntaxError, ValueError, EOFError):
        return None
    return _orient(image, orientation)


def decode_raw(data: bytes, min_size: tuple[int, int]) -> RawImage:
    """Decode a RAW file's bytes; `min_size` is (longer side, shorter side) the caller needs at least.
    Raises RawError with LibRaw's reason."""
    import rawpy

    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            sizes = raw.sizes
            orientation = _FLIP_TO_ORIENTATION.get(sizes.flip, 1)
            width, height = sizes.width, sizes.height
            if orientation in (5, 6, 7, 8):
                width, height = height, width
            moment = raw.other.timestamp
            timestamp = moment.strftime("%Y:%m:%d %H:%M:%S") if moment and moment.year > 1970 else None
            jpeg = _preview_jpeg(raw)
            image = _preview(jpeg, min_size, orientation) if jpeg else None
            source = "preview"
            if image is None:
                # half_size: one pixel per 2 x 2 filter block; the camera's white balance; LibRaw applies the flip.
                pixels = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
                image, source = Image.fromarray(pixels, "RGB"), "demosaic"
    except rawpy.LibRawFileUnsupportedError:
        raise RawError("a camera RAW file LibRaw does not support (an unknown camera or format), or not "
                       "a RAW file") from None
    except rawpy.LibRawError as exc:
        raise RawError(f"damaged camera RAW file ({' '.join(str(exc).split()) or type(exc).__name__})") from None
    return RawImage(image, jpeg, orientation, (width, height), source, timestamp)
