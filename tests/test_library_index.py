"""The indexer in-process: incremental runs, moves, every kind of bad input, model switches, cancelling,
readers during a run. Uses the tiny random model: mechanics, not meaning."""

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipdesk import paths
from clipdesk.library import decode as decode_module
from clipdesk.library import indexer as indexer_module
from clipdesk.library.decode import PhotoError, decode_photo, read_file
from clipdesk.library.indexer import index_folders
from clipdesk.library.records import OK
from clipdesk.library.store import Library, embedding_model_key
from clipdesk.library.thumbnails import (ThumbnailCache, legacy_thumbnails_dir, remove_legacy_thumbnails,
                                         thumbnail_cache)
from clipdesk.progress import Progress
from clipdesk.runtime.package import load_package


def make_photo(path, seed: int = 0, size=(40, 32), exif: Image.Exif | None = None, image_format="JPEG") -> Path:
    """A small noise image, distinct per seed (so distinct bytes and hashes)."""
    path = Path(os.fsdecode(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    options = {"exif": exif} if exif is not None else {}
    Image.fromarray(pixels).save(path, image_format, **options)
    return path


def png_bomb(path, side: int = 40_000) -> Path:
    """A valid PNG header announcing side x side pixels (1.6 gigapixels) over a few bytes of data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * (side * 3 + 1) * 4)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return Path(path)


def run_index(package, folders=None, **options):
    options.setdefault("batch_size", 4)
    with Library() as library:
        return index_folders(library, folders, package, **options)


def check_consistency(library: Library, model: str) -> None:
    """The invariants a killed or failed run must never break."""
    conn = library.conn
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("SELECT count(*) - count(DISTINCT path) FROM photos").fetchone()[0] == 0
    unembedded = conn.execute("SELECT count(*) FROM photos p WHERE status = 'ok' AND NOT EXISTS "
                              "(SELECT 1 FROM embeddings e WHERE e.photo_id = p.id AND e.model = ?)", (model,))
    assert unembedded.fetchone()[0] == 0
    twice = conn.execute("SELECT count(*) FROM (SELECT photo_id FROM embeddings GROUP BY photo_id, model "
                         "HAVING count(*) > 1)").fetchone()[0]
    assert twice == 0


def errors_by_name(library: Library) -> dict[bytes, str]:
    return {os.path.basename(os.fsencode(record.path)): record.error for record in library.errors()}


@pytest.fixture
def model(tiny_model_package):
    return load_package(tiny_model_package)


def test_incremental_add_change_touch_move_and_delete(tmp_path, model):
    photos = tmp_path / "photos"
    for seed in range(6):
        make_photo(photos / f"p{seed}.jpg", seed)
    first = run_index(model, [photos])
    assert (first.scanned, first.indexed, first.embedded, first.failed) == (6, 6, 6, 0)
    assert run_index(model).unchanged == 6  # no folder given: every library folder

    with Library() as library:
        ids = {name: library.photo_id(photos / name) for name in ("p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg")}
        with library.transaction() as conn:  # a user tag, to see it survive the move
            conn.execute("INSERT INTO tags (name) VALUES ('beach')")
            conn.execute("INSERT INTO photo_tags VALUES (?, 1, 'user', NULL)", (ids["p2.jpg"],))
        old_vector = library.embedding_matrix(embedding_model_key(model))[1][0].copy()

    make_photo(photos / "new.jpg", 100)
    make_photo(photos / "p0.jpg", 200)  # new content at the same path
    os.utime(photos / "p1.jpg", ns=(1, 10**18))  # touched: same bytes, new mtime
    (photos / "sub").mkdir()
    os.rename(photos / "p2.jpg", photos / "sub" / "renamed.jpg")
    os.remove(photos / "p3.jpg")
    summary = run_index(model)
    assert (summary.indexed, summary.embedded, summary.moved, summary.removed, summary.unchanged) == (2, 2, 1, 1, 3)

    with Library() as library:
        assert library.photo_id(photos / "p0.jpg") == ids["p0.jpg"]  # same photo, new content
        assert library.photo_id(photos / "sub" / "renamed.jpg") == ids["p2.jpg"]
        assert library.conn.execute("SELECT photo_id FROM photo_tags").fetchall() == [(ids["p2.jpg"],)]
        assert library.photo(ids["p3.jpg"]) is None
        ids_now, vectors = library.embedding_matrix(embedding_model_key(model))
        assert len(ids_now) == 6
        assert not np.array_equal(vectors[list(ids_now).index(ids["p0.jpg"])], old_vector)
        check_consistency(library, embedding_model_key(model))
    assert run_index(model).unchanged == 6


def test_every_bad_input_is_recorded_and_nothing_indexed_is_lost(tmp_path, model):
    photos = tmp_path / "photos"
    good = [make_photo(photos / f"good{seed}.jpg", seed) for seed in range(3)]
    assert run_index(model, [photos]).indexed == 3

    (photos / "zero.jpg").write_bytes(b"")
    full = io.BytesIO()
    Image.fromarray(np.random.default_rng(9).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(full, "JPEG")
    (photos / "truncated.jpg").write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    (photos / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + np.random.default_rng(1).bytes(3000))
    (photos / "notes.png").write_text("shopping list: eggs, milk\n")
    png_bomb(photos / "bomb.png")
    os.mkfifo(photos / "pipe.jpg")
    os.symlink("nowhere.jpg", photos / "broken.jpg")
    os.symlink("loop-b.jpg", photos / "loop-a.jpg")
    os.symlink("loop-a.jpg", photos / "loop-b.jpg")
    os.symlink(photos, photos / "again")  # a folder link back to its parent
    odd_names = [b"caf\xe9 \xff.jpg", "it's a \"photo\" with spaces 📷.jpg".encode()]
    for seed, name in enumerate(odd_names, start=50):
        make_photo(os.fsencode(photos) + b"/" + name, seed)
    make_photo(photos / "._good0.jpg", 77)  # macOS resource fork: hidden, skipped

    summary = run_index(model)
    assert summary.indexed == 2 and summary.unchanged == 3 and summary.removed == 0
    assert summary.failed == 9
    with Library() as library:
        errors = errors_by_name(library)
        assert errors[b"zero.jpg"] == "empty file (0 bytes)"
        assert "truncated" in errors[b"truncated.jpg"]
        assert "damaged" in errors[b"corrupt.jpg"] and "not an image" in errors[b"notes.png"]
        assert "decompression bomb" in errors[b"bomb.png"] and "1,600,000,000 pixels" in errors[b"bomb.png"]
        assert "not a regular file" in errors[b"pipe.jpg"]
        assert "broken symbolic link" in errors[b"broken.jpg"]
        assert errors[b"loop-a.jpg"] == errors[b"loop-b.jpg"] == "symbolic link loop"
        assert "symbolic link loop" in errors[b"again"]
        assert len(errors) == 10
        for name in odd_names:
            photo = library.photo(library.photo_id(os.fsencode(photos) + b"/" + name))
            assert photo.status == OK and os.path.basename(os.fsencode(photo.path)) == name
        for path in good:
            assert library.photo(library.photo_id(path)).status == OK
        check_consistency(library, embedding_model_key(model))

    again = run_index(model)  # nothing is retried until it changes
    assert (again.indexed, again.embedded, again.failed, again.removed, again.errors) == (0, 0, 0, 0, 10)
    os.remove(photos / "broken.jpg")
    os.symlink("good0.jpg", photos / "broken.jpg")  # the link mended
    assert run_index(model).reused == 1


def test_decompression_bomb_is_refused_before_any_decode(tmp_path, monkeypatch):
    monkeypatch.setattr(decode_module, "decode_opened", lambda *a, **k: pytest.fail("a bomb reached the decoder"))
    content = read_file(os.fsencode(png_bomb(tmp_path / "bomb.png")))
    with pytest.raises(PhotoError, match="decompression bomb"):
        decode_photo(content, 32, (0.5,) * 3, (0.5,) * 3)
    small = read_file(os.fsencode(make_photo(tmp_path / "ok.jpg", size=(100, 100))))
    with pytest.raises(PhotoError, match="10,000 pixels, over the limit of 9,999"):
        decode_photo(small, 32, (0.5,) * 3, (0.5,) * 3, max_pixels=9_999)


def test_the_gil_switch_interval_is_short_while_photos_are_processed_and_restored_after(tmp_path, model,
                                                                                         monkeypatch):
    seen = []
    real_prepare = indexer_module.Indexer._prepare
    monkeypatch.setattr(indexer_module.Indexer, "_prepare",
                        lambda self, item: seen.append(sys.getswitchinterval()) or real_prepare(self, item))
    make_photo(tmp_path / "photos" / "a.jpg", 1)
    before = sys.getswitchinterval()
    assert run_index(model, [tmp_path / "photos"]).indexed == 1
    assert seen == [indexer_module.GIL_SWITCH_INTERVAL] and sys.getswitchinterval() == before


def test_one_draft_decode_gives_exif_thumbnail_and_model_input(tmp_path):
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Canon\x00", " EOS R6 ", 6
    exif.get_ifd(0x8769)[0x9003] = "2024:07:14 18:03:22"
    exif.get_ifd(0x8769)[0x9011] = "+02:00"
    exif.get_ifd(0x8825).update({1: "S", 2: (33.0, 51.0, 36.0), 3: "E", 4: (151.0, 12.0, 36.0)})
    path = make_photo(tmp_path / "big.jpg", size=(2400, 1800), exif=exif)
    decoded = decode_photo(read_file(os.fsencode(path)), 224, (0.5,) * 3, (0.5,) * 3)
    meta = decoded.metadata
    assert (meta.width, meta.height, meta.orientation, meta.format) == (1800, 2400, 6, "JPEG")  # displayed size
    assert (meta.camera_make, meta.camera_model, meta.taken_at) == ("Canon", "EOS R6", "2024-07-14T18:03:22+02:00")
    assert meta.gps_lat == pytest.approx(-33.86) and meta.gps_lon == pytest.approx(151.21)
    # Drafted by 1/8, never decoded at 2400 x 1800: the shorter side still serves the 224 px model.
    assert decoded.decoded_size == (225, 300)  # upright
    assert decoded.pixels.shape == (3, 224, 224) and decoded.pixels.dtype == np.float32
    with Image.open(io.BytesIO(decoded.thumbnail)) as thumbnail:
        assert max(thumbnail.size) == 256 and thumbnail.size[1] > thumbnail.size[0]  # upright


def test_thumbnail_cache_remakes_lost_thumbnails_and_replaces_a_damaged_file(tmp_path):
    path = make_photo(tmp_path / "photo.jpg", size=(600, 400))
    cache = ThumbnailCache(tmp_path / "cache" / "thumbnails.db")
    assert cache.get("abc") is None
    jpeg = cache.make(path, "abc")  # not cached: made from the photo, and kept
    assert cache.get("abc") == jpeg and Image.open(io.BytesIO(jpeg)).size == (256, 171)
    cache.put_many([("abc", b"other")])  # a hash keeps its first thumbnail
    assert cache.get("abc") == jpeg
    cache.discard("abc")
    assert cache.get("abc") is None
    cache.close()
    (tmp_path / "cache" / "thumbnails.db").write_bytes(b"not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (tmp_path / "cache" / f"thumbnails.db{suffix}").unlink(missing_ok=True)
    again = ThumbnailCache(tmp_path / "cache" / "thumbnails.db")
    assert again.get("abc") is None and again.make(path, "abc") == jpeg
    again.close()


def test_the_old_thumbnail_folder_is_removed_when_the_cache_opens():
    legacy = Path(legacy_thumbnails_dir())
    (legacy / "ab").mkdir(parents=True)
    (legacy / "ab" / "abcdef.jpg").write_bytes(b"old thumbnail")
    cache = thumbnail_cache()
    deadline = time.monotonic() + 10
    while legacy.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not legacy.exists()
    assert cache.path == str(paths.thumbnail_cache_path())
    cache.put_many([("abc", b"jpeg")])
    assert cache.get("abc") == b"jpeg" and remove_legacy_thumbnails() is None
    # A folder of that name holding anything but that layout is not clipdesk's to delete.
    (legacy / "ab").mkdir(parents=True)
    (legacy / "notes.txt").write_text("mine")
    assert remove_legacy_thumbnails() is None and (legacy / "notes.txt").exists()


def test_a_500px_photo_is_decoded_at_half_scale_for_a_small_model(tmp_path):
    content = read_file(os.fsencode(make_photo(tmp_path / "web.jpg", size=(500, 375))))
    small = decode_photo(content, 64, (0.5,) * 3, (0.5,) * 3)
    assert small.decoded_size == (250, 188)
    # The halved decode as it is, within THUMBNAIL_MIN_SIZE..THUMBNAIL_SIZE:
    assert Image.open(io.BytesIO(small.thumbnail)).size == (250, 188)
    # A 224 px model needs the shorter side whole: no reduction, and the thumbnail is 256 px.
    large = decode_photo(content, 224, (0.5,) * 3, (0.5,) * 3)
    assert large.decoded_size == (500, 375) and Image.open(io.BytesIO(large.thumbnail)).size == (256, 192)


def test_files_that_vanish_or_change_after_the_scan(tmp_path, model, monkeypatch):
    photos = tmp_path / "photos"
    for seed in range(4):
        make_photo(photos / f"p{seed}.jpg", seed)
    real_scan = indexer_module.scan_folder

    def scan_then_meddle(*args, **kwargs):
        result = real_scan(*args, **kwargs)
        os.remove(photos / "p1.jpg")
        make_photo(photos / "p2.jpg", 99, size=(50, 50))
        return result

    monkeypatch.setattr(indexer_module, "scan_folder", scan_then_meddle)
    summary = run_index(model, [photos])
    assert (summary.indexed, summary.failed) == (3, 1)
    with Library() as library:
        assert errors_by_name(library) == {b"p1.jpg": "file vanished during indexing"}
        changed = library.photo(library.photo_id(photos / "p2.jpg"))
        assert changed.metadata.width == 50 and changed.mtime_ns == (photos / "p2.jpg").stat().st_mtime_ns
    monkeypatch.setattr(indexer_module, "scan_folder", real_scan)
    after = run_index(model)
    assert (after.unchanged, after.removed, after.errors) == (3, 1, 0)


def test_an_unavailable_folder_keeps_its_photos(tmp_path, model):
    photos = tmp_path / "drive"
    for seed in range(3):
        make_photo(photos / f"p{seed}.jpg", seed)
    run_index(model, [photos])
    os.rename(photos, tmp_path / "unplugged")
    summary = run_index(model)
    assert summary.removed == 0 and "folder not available" in summary.folder_problems[0]
    with Library() as library:
        assert library.counts()["ok"] == 3
    os.rename(tmp_path / "unplugged", photos)
    assert run_index(model).unchanged == 3


def test_unreadable_files_and_folders(tmp_path, tiny_model_package):
    """Permissions do not stop root (CAP_DAC_OVERRIDE): as root the CLI runs without those capabilities."""
    photos = tmp_path / "photos"
    make_photo(photos / "readable.jpg", 1)
    make_photo(photos / "secret.jpg", 2).chmod(0)
    make_photo(photos / "locked" / "inside.jpg", 3)
    (photos / "locked").chmod(0)
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root, whom permissions do not stop, and setpriv (util-linux) is missing")
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    command = [*prefix, sys.executable, "-m", "clipdesk", "index", str(photos), "--model", str(tiny_model_package),
               "--json"]
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    finally:
        (photos / "locked").chmod(0o755)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["indexed"], summary["failed"], summary["removed"]) == (1, 1, 0)
    assert "cannot list folder (Permission denied)" in summary["folder_problems"][0]
    with Library() as library:
        errors = errors_by_name(library)
    assert errors[b"secret.jpg"].startswith("permission denied") and "cannot list folder" in errors[b"locked"]


def test_identical_copies_reuse_the_vector_and_a_new_model_embeds_lazily(tmp_path, model, tiny_model_package):
    photos = tmp_path / "photos"
    make_photo(photos / "a.jpg", 1)
    run_index(model, [photos])
    shutil.copy(photos / "a.jpg", photos / "copy of a.jpg")
    copied = run_index(model)
    assert (copied.indexed, copied.embedded, copied.reused) == (1, 0, 1)

    other_dir = shutil.copytree(tiny_model_package, tmp_path / "other")
    manifest = json.loads((other_dir / "manifest.json").read_text())
    manifest["name"] = "other-model"
    (other_dir / "manifest.json").write_text(json.dumps(manifest))
    other = load_package(other_dir)
    switched = run_index(other)
    assert (switched.unchanged, switched.indexed) == (0, 2)
    with Library() as library:
        assert library.embedding_models() == {embedding_model_key(model): 2, embedding_model_key(other): 2}
        check_consistency(library, embedding_model_key(other))
    assert run_index(model).unchanged == 2 and run_index(other).unchanged == 2


class CancelAfter(Progress):
    def __init__(self, items: int):
        super().__init__()
        self.items = items

    def update(self, done, total, **facts):
        if total and done >= self.items:
            self.cancel()


def test_a_cancelled_run_keeps_its_work_and_the_next_resumes(tmp_path, model):
    photos = tmp_path / "photos"
    for seed in range(12):
        make_photo(photos / f"p{seed:02}.jpg", seed)
    run_index(model, [photos])
    os.remove(photos / "p00.jpg")
    for seed in range(12, 40):
        make_photo(photos / f"q{seed}.jpg", seed)
    cancelled = run_index(model, progress=CancelAfter(3), workers=1, batch_size=2)
    assert cancelled.cancelled and 3 <= cancelled.indexed < 28
    assert cancelled.removed == 0  # a cancelled run removes nothing: unprocessed files may be moves
    resumed = run_index(model)
    assert resumed.indexed == 28 - cancelled.indexed and resumed.removed == 1
    with Library() as library:
        assert library.counts()["ok"] == 39
        check_consistency(library, embedding_model_key(model))


def test_readers_read_while_an_index_runs(tmp_path, model):
    photos = tmp_path / "photos"
    for seed in range(40):
        make_photo(photos / f"p{seed:02}.jpg", seed)
    seen, failures, done = [], [], threading.Event()

    def reader():
        with Library() as library:
            while not done.is_set():
                try:
                    ids, vectors = library.embedding_matrix(embedding_model_key(model))
                    seen.append(len(ids))
                    assert len(ids) == vectors.shape[0]
                except Exception as exc:  # noqa: BLE001 - reported below
                    failures.append(exc)
                    return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        run_index(model, [photos], batch_size=2, workers=1)
    finally:
        done.set()
        thread.join()
    assert not failures
    assert seen == sorted(seen) and len(set(seen)) > 2  # saw the index grow batch by batch


def test_every_supported_format_is_indexed(tmp_path, model):
    photos = tmp_path / "photos"
    for seed, (suffix, image_format) in enumerate([(".png", "PNG"), (".webp", "WEBP"), (".bmp", "BMP"),
                                                   (".tiff", "TIFF"), (".JPEG", "JPEG")]):
        make_photo(photos / f"photo{suffix}", seed, image_format=image_format)
    red, blue = Image.new("RGB", (40, 30), (255, 0, 0)), Image.new("RGB", (40, 30), (0, 0, 255))
    red.save(photos / "animated.gif", save_all=True, append_images=[blue], duration=100)
    summary = run_index(model, [photos])
    assert (summary.indexed, summary.failed) == (6, 0)
    with Library() as library:
        gif = library.photo(library.photo_id(photos / "animated.gif"))
        formats = {library.photo(i).metadata.format for i in library.embedding_matrix(summary.model)[0]}
        hashes = [library.photo(i).hash for i in library.embedding_matrix(summary.model)[0]]
    assert formats == {"PNG", "WEBP", "BMP", "TIFF", "JPEG", "GIF"}
    with Image.open(io.BytesIO(thumbnail_cache().get(gif.hash))) as thumbnail:  # the first frame, stored by the indexer
        assert thumbnail.convert("RGB").getpixel((20, 15))[0] > 200
    assert all(thumbnail_cache().get(library_hash) for library_hash in hashes)


def test_clipdesk_own_folders_inside_a_photo_folder_are_not_indexed(tmp_path, model, monkeypatch):
    photos = tmp_path / "photos"
    make_photo(photos / "a.jpg", 1)
    monkeypatch.setenv("CLIPDESK_HOME", str(photos / "clipdesk data"))  # thumbnails land inside the folder
    assert run_index(model, [photos]).indexed == 1
    assert (photos / "clipdesk data" / "cache" / "thumbnails.db").is_file()
    again = run_index(model)
    assert (again.scanned, again.unchanged) == (1, 1)


def test_an_empty_library_and_the_encoder_thread_cap(tmp_path, model, monkeypatch):
    from clipdesk.errors import ClipdeskError, EmptyLibraryError
    from clipdesk.runtime import encoders

    with pytest.raises(EmptyLibraryError, match="no folders yet; add one with `clipdesk index FOLDER`"):
        run_index(model)
    with pytest.raises(ClipdeskError, match="intra-op threads must be at least 1"):
        run_index(model, [tmp_path], intra_op_threads=0)
    seen = []
    original = encoders._session_options
    monkeypatch.setattr(encoders, "_session_options", lambda threads: seen.append(threads) or original(threads))
    make_photo(tmp_path / "photos" / "a.jpg")
    assert run_index(model, [tmp_path / "photos"], intra_op_threads=1).indexed == 1
    assert seen and set(seen) == {1}  # the image encoder's session (CUDA tried first, maybe) used the cap


def test_a_folder_removed_while_it_is_indexed_is_skipped_and_the_run_ends_normally(tmp_path, model, capsys):
    """`clipdesk folders remove DIR` during `clipdesk index DIR`: the indexer skips what was removed under
    it, says so, and leaves the library consistent (it used to die on a foreign-key error)."""
    from clipdesk.progress import Progress

    kept, going = tmp_path / "kept", tmp_path / "going"
    for seed in range(6):
        make_photo(kept / f"k{seed}.jpg", seed)
    for seed in range(24):
        make_photo(going / f"g{seed}.jpg", 100 + seed)

    class RemoveMidway(Progress):
        def update(self, done, total, **facts):
            if facts.get("stage") != "scanning" and done == 10:
                with Library() as other:  # another connection, as another process would be
                    other.remove_folder(going)

    with Library() as library:
        summary = index_folders(library, [kept, going], model, progress=RemoveMidway(), batch_size=2,
                                workers=1)
        assert [folder.path for folder in library.folders()] == [os.fsdecode(kept)]
        assert not summary.cancelled
        assert any("removed from the library while it was being indexed" in problem
                   for problem in summary.folder_problems)
        assert library.conn.execute("SELECT count(*) FROM photos").fetchone()[0] == 6  # kept's, all of them
        check_consistency(library, embedding_model_key(model))


def test_a_huge_png_is_refused_with_its_memory_cost_before_decoding_but_a_huge_jpeg_is_indexed(tmp_path, model):
    """A 13,000 x 13,000 PNG used to be decoded whole (729 MB at peak); a JPEG that size decodes reduced."""
    import tracemalloc

    huge_png = png_bomb(tmp_path / "huge.png", side=13_000)  # a real header over a few bytes of data
    content = read_file(os.fsencode(huge_png))
    tracemalloc.start()
    with pytest.raises(PhotoError, match="more than the 100,000,000 clipdesk decodes whole") as caught:
        decode_photo(content, 32, (0.5,) * 3, (0.5,) * 3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50_000_000 and "507 MB" in str(caught.value)
    big_jpeg = tmp_path / "big.jpg"
    Image.new("RGB", (12_000, 9_000), (30, 120, 200)).save(big_jpeg, quality=50)
    decoded = decode_photo(read_file(os.fsencode(big_jpeg)), 32, (0.5,) * 3, (0.5,) * 3)
    assert decoded.metadata.width == 12_000
