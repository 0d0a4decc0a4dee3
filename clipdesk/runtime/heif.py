"""HEIC/HEIF decoding through pi-heif: libheif and libde265, decode only. pillow-heif's wheels also carry
the x265 encoder, which is GPL; pi-heif's do not, so the app bundle can ship it (LGPL-3.0, see
packaging/notices.py).

Only a file's primary image is decoded. Depth maps, auxiliary images (HDR gain maps, portrait mattes)
and embedded thumbnails are never read, so they can neither replace the photo nor cost decode time.
libheif applies the file's own rotation and mirroring (irot/imir boxes); pi-heif then sets the EXIF
orientation to 1, so the photo is turned once, upright, like a JPEG with its EXIF orientation.
"""

from __future__ import annotations

import functools
import io

# ISO BMFF brands of HEIF still images (HEVC, and the generic ones); AVIF's brands belong to Pillow.
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})


@functools.lru_cache(maxsize=1)
def register_heif_decoder() -> bool:
    """Register pi-heif's opener with Pillow, once per process; False when pi-heif is not installed."""
    try:
        import pi_heif
    except ImportError:
        return False
    pi_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
    return True


def looks_like_heif(data: bytes) -> bool:
    """An ISO BMFF file whose major brand is a HEIF still-image one (what an `ftyp` box says first)."""
    return data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS


def heif_problem(data: bytes) -> str | None:
    """libheif's own words for why a HEIF file cannot be opened (Pillow only says it cannot identify it)."""
    if not looks_like_heif(data) or not register_heif_decoder():
        return None
    import pi_heif

    try:
        pi_heif.open_heif(io.BytesIO(data)).to_pillow().load()
    except Exception as exc:  # noqa: BLE001 - libheif's message is the reason recorded for the file
        return " ".join(str(exc).split()) or type(exc).__name__
    return None
