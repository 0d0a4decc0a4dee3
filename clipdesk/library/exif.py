"""The EXIF fields the library keeps: date taken, camera, orientation, GPS position.

Cameras and editors write malformed EXIF often enough that every field is read on its own: a bad
field becomes None, never a failed photo.
"""

from __future__ import annotations

import math
from datetime import datetime

from PIL import ExifTags, Image

# (date tag, offset tag, IFD holding them): the first date present wins.
_DATE_TAGS = (
    (ExifTags.Base.DateTimeOriginal, ExifTags.Base.OffsetTimeOriginal, ExifTags.IFD.Exif),
    (ExifTags.Base.DateTimeDigitized, ExifTags.Base.OffsetTimeDigitized, ExifTags.IFD.Exif),
    (ExifTags.Base.DateTime, ExifTags.Base.OffsetTime, None),
)
_TEXT_LIMIT = 120


def _text(value) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", " ").strip()
    return value[:_TEXT_LIMIT] or None


def exif_date(value, offset) -> str | None:
    text = _text(value)
    if not text:
        return None
    try:
        # EXIF writes "2024:07:14 18:03:22"; "0000:00:00 00:00:00" and other junk fail here.
        moment = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    iso = moment.isoformat()
    offset = _text(offset)
    if offset and len(offset) == 6 and offset[0] in "+-" and offset[3] == ":":
        iso += offset
    return iso


def _degrees(value, reference) -> float | None:
    try:
        degrees, minutes, seconds = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    result = degrees + minutes / 60 + seconds / 3600
    if not math.isfinite(result):
        return None
    return -result if _text(reference) in ("S", "W") else result


FIELDS = ("taken_at", "camera_make", "camera_model", "orientation", "gps_lat", "gps_lon")


def read_exif(image: Image.Image) -> dict:
    """taken_at, camera_make, camera_model, orientation, gps_lat, gps_lon (None when absent or malformed)."""
    try:
        exif = image.getexif()
    except Exception:  # noqa: BLE001 - any parser failure means "no EXIF", never a failed photo
        return dict.fromkeys(FIELDS)
    return exif_fields(exif)


def tiff_exif(data: bytes) -> dict:
    """read_exif's fields from a TIFF-structured file's first directory, without opening it as an image
    (camera RAWs: DNG, NEF, CR2, ARW... whose sensor data Pillow cannot decode)."""
    exif = Image.Exif()
    try:
        exif.load(data)
    except Exception:  # noqa: BLE001 - same reason as read_exif
        return dict.fromkeys(FIELDS)
    return exif_fields(exif)


def exif_fields(exif: Image.Exif) -> dict:
    fields = dict.fromkeys(FIELDS)
    ifds = {None: exif}
    for ifd in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo):
        try:
            ifds[ifd] = exif.get_ifd(ifd)
        except Exception:  # noqa: BLE001 - same reason
            ifds[ifd] = {}
    for date_tag, offset_tag, ifd in _DATE_TAGS:
        fields["taken_at"] = exif_date(ifds[ifd].get(date_tag), ifds[ifd].get(offset_tag))
        if fields["taken_at"]:
            break
    fields["camera_make"] = _text(exif.get(ExifTags.Base.Make))
    fields["camera_model"] = _text(exif.get(ExifTags.Base.Model))
    orientation = exif.get(ExifTags.Base.Orientation)
    fields["orientation"] = orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else None
    gps = ifds[ExifTags.IFD.GPSInfo]
    lat = _degrees(gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef))
    lon = _degrees(gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef))
    # Receivers without a fix write 0/0; out-of-range values are corrupt.
    if lat is not None and lon is not None and (lat, lon) != (0.0, 0.0) and abs(lat) <= 90 and abs(lon) <= 180:
        fields["gps_lat"], fields["gps_lon"] = lat, lon
    return fields


def camera_name(make: str | None, model: str | None) -> str:
    """"Canon DIGITAL IXUS i7 zoom", not "Canon Canon DIGITAL IXUS i7 zoom": many cameras repeat their
    maker in the model ("NIKON CORPORATION" + "NIKON D70" -> "NIKON D70"); the others get both."""
    make, model = (make or "").strip(), (model or "").strip()
    if make and model and model.casefold().startswith(make.split()[0].casefold()):
        return model
    return " ".join(part for part in (make, model) if part)
