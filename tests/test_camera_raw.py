"""Camera RAW through rawpy (LibRaw), with DNGs made from real photos in the test (dng_files.py), and
RAW + JPEG stacks: shown once in search, tagged together, both files' XMP sidecars written."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipdesk.library.decode import PhotoError, decode_photo, read_file
from clipdesk.library.indexer import index_folders
from clipdesk.library.stacks import stack_paths
from clipdesk.library.store import Library
from clipdesk.runtime.package import load_package
from clipdesk.runtime.raw import RawError, decode_raw
from clipdesk.search.searcher import Searcher
from clipdesk.tagging.tags import add_tags, remove_tags, tags_of_photos
from clipdesk.tagging.xmp_export import export_sidecars
from dng_files import make_dng
from real_photos import real_photo

PREPROCESSING = {"resolution": 32, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


def decoded(path: Path):
    return decode_photo(read_file(os.fsencode(path)), raw_format="DNG", **PREPROCESSING)


def thumbnail_of(result) -> np.ndarray:
    with Image.open(io.BytesIO(result.thumbnail)) as thumbnail:
        return np.asarray(thumbnail.convert("L").resize((48, 48)), np.float32)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_a_large_enough_preview_is_used_and_a_small_one_is_not(tmp_path):
    """Orientation 6 (90 degrees clockwise) in the DNG: the picture comes out upright either way; the
    EXIF camera and date are read; the preview is used when it covers the thumbnail and the model."""
    photo = real_photo(0)
    upright = np.asarray(photo.rotate(-90, expand=True).convert("L").resize((48, 48)), np.float32)
    previewed = make_dng(tmp_path / "previewed.dng", photo, preview=1024, orientation=6)
    small = make_dng(tmp_path / "small.dng", photo, preview=100, orientation=6)
    bare = make_dng(tmp_path / "bare.dng", photo, orientation=6)
    sources = {path.name: decode_raw(path.read_bytes(), (224, 32)).source for path in (previewed, small, bare)}
    assert sources == {"previewed.dng": "preview", "small.dng": "demosaic", "bare.dng": "demosaic"}
    for path in (previewed, small, bare):
        result = decoded(path)
        meta = result.metadata
        assert (meta.width, meta.height, meta.orientation) == (426, 640, 6), path.name
        assert (meta.camera_make, meta.camera_model, meta.taken_at) == ("Clipdesk", "Test Camera",
                                                                         "2021-05-06T07:08:09")
        assert meta.format == "DNG" and result.pixels.shape == (3, 32, 32)
        # The demosaic's tones differ from the JPEG (LibRaw's curve), its picture does not.
        assert correlation(thumbnail_of(result), upright) > 0.9, path.name
        assert correlation(thumbnail_of(result), np.rot90(upright, 2)) < 0.5, path.name


def test_junk_and_truncated_raws_get_reasons_and_the_run_goes_on(tmp_path, tiny_model_package):
    photos = tmp_path / "photos"
    good = make_dng(photos / "good.dng", real_photo(1), preview=512)
    (photos / "junk.nef").write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, np.uint8).tobytes())
    (photos / "text.cr2").write_bytes(b"not a raw file at all\n" * 100)
    bare = make_dng(tmp_path / "bare.dng", real_photo(2))
    (photos / "truncated.dng").write_bytes(bare.read_bytes()[:4000])
    with pytest.raises(RawError, match="LibRaw does not support"):
        decode_raw((photos / "junk.nef").read_bytes(), (224, 32))
    with Library() as library:
        summary = index_folders(library, [photos], load_package(tiny_model_package), batch_size=4)
        assert (summary.indexed, summary.failed) == (1, 3)
        errors = {Path(record.path).name: record.error for record in library.errors()}
    assert set(errors) == {"junk.nef", "text.cr2", "truncated.dng"}
    assert errors["junk.nef"].startswith("a camera RAW file LibRaw does not support"), errors
    assert errors["truncated.dng"], errors
    assert good.exists()
    with pytest.raises(PhotoError):
        decode_photo(read_file(os.fsencode(photos / "junk.nef")), raw_format="NEF", **PREPROCESSING)


def test_a_raw_and_a_jpeg_of_one_shot_are_one_stack(tmp_path, tiny_model_package, model):
    photos = tmp_path / "photos"
    shot = real_photo(3)
    raw = make_dng(photos / "IMG_0042.dng", shot, preview=640)
    jpeg = photos / "IMG_0042.jpg"
    shot.save(jpeg, "JPEG", quality=90)
    real_photo(4).save(photos / "IMG_0043.jpg", "JPEG")
    real_photo(5).save(photos / "IMG_0042.backup.jpg", "JPEG")  # another stem: not in the stack
    with Library() as library:
        summary = index_folders(library, [photos], load_package(tiny_model_package), batch_size=4)
        assert (summary.indexed, summary.failed) == (4, 0)
        assert stack_paths(library.conn, raw) == [str(jpeg), str(raw)]
        assert stack_paths(library.conn, photos / "IMG_0043.jpg") == []
        results = Searcher(library, model).search("a photo", k=10)
        paths = [result.path for result in results]
        assert sorted(paths) == sorted(map(str, (jpeg, photos / "IMG_0043.jpg", photos / "IMG_0042.backup.jpg")))
        stacked = next(result for result in results if result.stack)
        assert stacked.to_dict()["stack"] == [str(jpeg), str(raw)]
        assert stacked.photo_id == library.photo_id(jpeg)
        # Tagged as one item: the tag is on both files, and both get a sidecar.
        raw_id, jpeg_id = library.photo_id(raw), library.photo_id(jpeg)
        add_tags(library, [jpeg_id], ["harbour"])
        tags = tags_of_photos(library, [raw_id, jpeg_id])
        assert [tag.name for tag in tags[raw_id]] == [tag.name for tag in tags[jpeg_id]] == ["harbour"]
        export_sidecars(library)
        assert "harbour" in Path(str(raw) + ".xmp").read_text() and "harbour" in Path(str(jpeg) + ".xmp").read_text()
        remove_tags(library, [raw_id], ["harbour"])
        assert tags_of_photos(library, [jpeg_id])[jpeg_id] == []


def test_the_photo_view_says_both_files_exist(tmp_path, tiny_model_package):
    from clipdesk.ui.library_service import PhotoDetails
    from clipdesk.ui.photo_view import describe
    from clipdesk.ui.thumbnails import read_image

    photos = tmp_path / "photos"
    raw = make_dng(photos / "DSC_7.dng", real_photo(6), preview=640)
    real_photo(6).save(photos / "DSC_7.jpg", "JPEG")
    with Library() as library:
        index_folders(library, [photos], load_package(tiny_model_package))
        photo = library.photo(library.photo_id(raw))
        rows = dict(describe(PhotoDetails(photo, [], stack_paths(library.conn, photo.path))))
    assert rows["Files"] == "DSC_7.jpg + DSC_7.dng"
    image = read_image(str(raw), 200)
    assert not image.isNull() and max(image.width(), image.height()) == 200
