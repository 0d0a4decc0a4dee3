"""Thumbnails: 224-256 px JPEGs in one SQLite file in the cache folder, keyed by the photo's content hash.

Keyed by content rather than path, a moved photo keeps its thumbnail and identical copies share one.
One file rather than one per photo: creating a file costs 0.1-0.3 ms of kernel time (indexing ran
13 % faster without those files), and a library of 100,000 photos would leave as many small files.
The indexer encodes thumbnails in its workers and stores each batch's in one transaction; readers
(the grid's threads) have their own connections, and WAL lets them read while a batch is written.

The cache may be deleted at any time, and a damaged one is replaced: `make` makes a missing
thumbnail again from the photo.
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterable

from PIL import Image

from clipdesk import paths
from clipdesk.errors import ClipdeskError
from clipdesk.library.pathnames import PathInput, display_path
from clipdesk.runtime.preprocess import load_image
from clipdesk.runtime.video_frames import VideoError, is_video, still_image
from clipdesk.sqlite_threads import ThreadConnections, write_transaction

THUMBNAIL_SIZE = 256  # the longer side, in pixels
# ... or as little as this when a JPEG decoded at reduced scale (draft) lands between the two: a 500 px
# photo halved gives a 250 px thumbnail at no resize, where a full decode to reach 256 costs ~3x the
# decode (most photo sets hold such sizes; the grid draws thumbnails scaled anyway).
THUMBNAIL_MIN_SIZE = 224
JPEG_QUALITY = 85
_SCHEMA = "CREATE TABLE IF NOT EXISTS thumbnails (hash TEXT PRIMARY KEY, jpeg BLOB NOT NULL) WITHOUT ROWID"


def thumbnail_size(width: int, height: int) -> tuple[int, int]:
    """Fits in THUMBNAIL_SIZE x THUMBNAIL_SIZE, aspect kept, never enlarged."""
    scale = min(1.0, THUMBNAIL_SIZE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode_thumbnail(image: Image.Image) -> bytes:
    """The thumbnail of an upright RGB image, as JPEG bytes."""
    size = thumbnail_size(*image.size)
    # Bilinear (antialiased when shrinking, like every Pillow filter) costs half of bicubic here.
    small = image if size == image.size else image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def frame_thumbnail_key(content_hash: str, moment: float) -> str:
    """The cache key of the thumbnail of a video's frame at `moment` seconds (the video's own is its hash)."""
    return f"{content_hash}@{round(moment * 1000)}"


def _thumbnail_image(photo_path: str, moment: float | None) -> Image.Image:
    if not is_video(photo_path):
        return load_image(photo_path, draft_size=(THUMBNAIL_MIN_SIZE, 1))
    try:
        return still_image(photo_path, moment)
    except VideoError as exc:
        raise ClipdeskError(f"{display_path(photo_path)}: {exc}") from None


class ThumbnailCache:
    """The thumbnail file: get, put (in batches), make again. One connection per thread."""

    def __init__(self, path: PathInput):
        self.path = os.fsdecode(path)
        self._connections = ThreadConnections(self._connect)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = OFF")  # a cache: a power cut may lose recent entries, no more
            conn.execute(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect(self) -> sqlite3.Connection:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        try:
            return self._open()
        except sqlite3.DatabaseError:  # damaged (or not SQLite): a cache is made again, not repaired
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.remove(self.path + suffix)
                except FileNotFoundError:
                    pass
            return self._open()

    @property
    def conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def get(self, content_hash: str) -> bytes | None:
        row = self.conn.execute("SELECT jpeg FROM thumbnails WHERE hash = ?", (content_hash,)).fetchone()
        return row[0] if row else None

    def put_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        """Store thumbnails in one transaction (a hash already there keeps its thumbnail)."""
        items = list(items)
        if not items:
            return
        with write_transaction(self.conn) as conn:
            conn.executemany("INSERT OR IGNORE INTO thumbnails (hash, jpeg) VALUES (?, ?)", items)

    def discard(self, content_hash: str) -> None:
        self.conn.execute("DELETE FROM thumbnails WHERE hash = ?", (content_hash,))

    def make(self, photo_path: PathInput, content_hash: str, moment: float | None = None) -> bytes:
        """The thumbnail made from the photo (a video: its poster, or its frame at `moment`) and kept, for a
        caller that found it missing. Raises ClipdeskError (one line, naming the file) when the file cannot
        be decoded."""
        jpeg = encode_thumbnail(_thumbnail_image(os.fsdecode(photo_path), moment))
        key = content_hash if moment is None else frame_thumbnail_key(content_hash, moment)
        try:
            self.put_many([(key, jpeg)])
        except sqlite3.Error:
            pass  # a full or read-only cache still shows the thumbnail, made again next time
        return jpeg

    def close(self) -> None:
        self._connections.close_all()


_caches: dict[str, ThumbnailCache] = {}
_caches_lock = threading.Lock()


def thumbnail_cache(path: PathInput | None = None) -> ThumbnailCache:
    """The cache at `path` (default: this user's), one object per file in a process."""
    key = os.fsdecode(path) if path is not None else os.fspath(paths.thumbnail_cache_path())
    with _caches_lock:
        if key not in _caches:
            _caches[key] = ThumbnailCache(key)
            if path is None:
                remove_legacy_thumbnails()
        return _caches[key]


_HEX_PAIRS = frozenset(f"{value:02x}" for value in range(256))


def legacy_thumbnails_dir() -> str:
    """Where versions before the thumbnail file kept one JPEG per photo (cache/thumbnails/ab/<hash>.jpg)."""
    return os.path.join(os.fspath(paths.cache_dir()), "thumbnails")


def remove_legacy_thumbnails() -> threading.Thread | None:
    """Delete the old one-file-per-photo thumbnail folder, which nothing reads any more, in a background
    thread (100,000 small files take seconds to delete; the app must not wait for them)."""
    folder = legacy_thumbnails_dir()
    if not os.path.isdir(folder) or os.path.islink(folder):
        return None
    try:  # only the layout those versions wrote: two-hex-digit folders (a folder of anything else stays)
        if not all(name in _HEX_PAIRS for name in os.listdir(folder)):
            return None
    except OSError:
        return None
    thread = threading.Thread(target=shutil.rmtree, args=(folder,), kwargs={"ignore_errors": True},
                              name="remove-legacy-thumbnails", daemon=True)
    thread.start()
    return thread


def store_thumbnails(items: Iterable[tuple[str, bytes]]) -> None:
    """Indexing's write: a full, read-only or locked cache never fails a run (the grid remakes what is
    missing)."""
    try:
        thumbnail_cache().put_many(items)
    except sqlite3.Error:
        pass
