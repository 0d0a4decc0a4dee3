"""HEIC/HEIF (pi-heif, decode only) and AVIF (Pillow's own) photos, made here from real photos.

The tests encode with pillow-heif (the dev extra; the app itself has no HEIC encoder) and with Pillow's
AVIF encoder, from ../shared/data/photos/coco-mini.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from PIL import Image

from clipdesk.library.decode import PhotoError, decode_photo, read_file
from clipdesk.library.indexer import index_folders
from clipdesk.library.scanner import supported_extensions
from clipdesk.library.store import Library
from clipdesk.runtime.package import load_package
from real_photos import real_photo

ORIENTATION = 0x0112
PREPROCESSING = {"resolution": 32, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


def save_heic(image: Image.Image, path: Path, **options) -> Path:
    """HEIC through pillow-heif's encoder, without registering it (the app's decoder is pi-heif's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pillow_heif.from_pillow(image).save(path, format="HEIF", quality=85, **options)
    return path


def save_avif(image: Image.Image, path: Path, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "AVIF", quality=85, **options)
    return path


def decoded(path: Path):
    return decode_photo(read_file(os.fsencode(path)), **PREPROCESSING)


def thumbnail_pixels(photo) -> np.ndarray:
    with Image.open(io.BytesIO(photo.thumbnail)) as thumbnail:
        return np.asarray(thumbnail.convert("RGB").resize((64, 64)), dtype=np.float32)


def test_heic_and_avif_are_found_and_their_extensions_listed():
    assert {b".heic", b".heif", b".hif", b".avif"} <= supported_extensions()


def test_heic_and_avif_decode_like_the_jpeg_they_were_made_from_orientation_included(tmp_path):
    """A JPEG turned by its EXIF orientation (6: rotate 90 degrees), and the same pixels as HEIC (the
    encoder writes HEIF's own rotation box, irot, and keeps EXIF orientation 6 beside it, as phones do)
    and as AVIF (EXIF orientation 6): all three decode upright, turned once, to the same picture."""
    photo = real_photo(0)
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    jpeg = tmp_path / "turned.jpg"
    photo.save(jpeg, "JPEG", quality=95, exif=exif)
    heif = pillow_heif.from_pillow(photo)
    heif.info["exif"] = exif.tobytes()
    heic = tmp_path / "turned.heic"
    heif.save(heic, format="HEIF", quality=85)
    assert b"irot" in heic.read_bytes()
    avif = save_avif(photo, tmp_path / "turned.avif", exif=exif)
    results = {path.suffix: decoded(path) for path in (jpeg, heic, avif)}
    upright = (photo.height, photo.width)
    for suffix, result in results.items():
        assert (result.metadata.width, result.metadata.height) == upright, suffix
        assert result.pixels.shape == (3, 32, 32)
    assert results[".heic"].metadata.format == "HEIF" and results[".avif"].metadata.format == "AVIF"
    reference = thumbnail_pixels(results[".jpg"])
    for suffix in (".heic", ".avif"):
        difference = np.abs(thumbnail_pixels(results[suffix]) - reference).mean()
        assert difference < 6, f"{suffix} differs from the JPEG by {difference:.1f} levels on average"
    # Turned the wrong way, the same picture differs by far more: the check above can tell.
    assert np.abs(np.rot90(thumbnail_pixels(results[".jpg"]), 2) - reference).mean() > 20


def test_only_the_primary_image_of_a_heif_file_is_decoded(tmp_path):
    """A HEIF file holding two photos and thumbnails: the one marked primary is the photo indexed."""
    first, second = real_photo(1), real_photo(2).resize((300, 200))
    heif = pillow_heif.from_pillow(first)
    heif.add_from_pillow(second)
    heif.info["primary"] = False
    heif.save(tmp_path / "two.heic", format="HEIF", quality=85, primary_index=1)
    with_thumbnail = pillow_heif.from_pillow(first)
    with_thumbnail.info["thumbnails"] = [96]
    with_thumbnail.save(tmp_path / "thumbnailed.heic", format="HEIF", quality=85)
    two = decoded(tmp_path / "two.heic")
    assert (two.metadata.width, two.metadata.height) == (300, 200)
    thumbnailed = decoded(tmp_path / "thumbnailed.heic")
    assert (thumbnailed.metadata.width, thumbnailed.metadata.height) == first.size


def test_a_truncated_heic_gets_a_reason_and_the_run_goes_on(tmp_path, tiny_model_package):
    photos = tmp_path / "photos"
    good = save_heic(real_photo(3), photos / "good.heic")
    save_avif(real_photo(4), photos / "good.avif")
    real_photo(5).save(photos / "good.jpg", "JPEG")
    data = good.read_bytes()
    (photos / "truncated.heic").write_bytes(data[: len(data) // 2])
    (photos / "header-only.heic").write_bytes(data[:64])
    with pytest.raises(PhotoError, match=r"^damaged HEIF file \(.+\)$"):
        decoded(photos / "header-only.heic")
    with Library() as library:
        summary = index_folders(library, [photos], load_package(tiny_model_package), batch_size=4)
        assert (summary.indexed, summary.failed) == (3, 2)
        errors = {Path(record.path).name: record.error for record in library.errors()}
        assert set(errors) == {"truncated.heic", "header-only.heic"}
        # Cut before its index (meta box): refused at open; cut inside its pixels: refused while decoding.
        assert errors["header-only.heic"].startswith("damaged HEIF file (Invalid input"), errors
        assert errors["truncated.heic"].startswith("damaged or unsupported file (Invalid input: Unexpected end of "
                                                   "file"), errors
        formats = sorted(library.photo(photo_id).metadata.format
                         for photo_id in library.embedding_matrix(summary.model)[0])
        assert formats == ["AVIF", "HEIF", "JPEG"]


def test_the_photo_view_shows_a_heic_that_qt_cannot_read(tmp_path):
    from clipdesk.ui.thumbnails import read_image

    heic = save_heic(real_photo(6), tmp_path / "view.heic")
    image = read_image(str(heic), 128)
    assert not image.isNull() and max(image.width(), image.height()) == 128
