"""Grid thumbnails: loaded from the library's thumbnail cache on worker threads, newest request first.

The grid asks for a thumbnail when it paints a cell. Requests go on a stack: scrolling fast through
100,000 photos, the cells on screen now are served before those scrolled past, and the oldest
requests are dropped once the stack is full (they are asked again if the cell comes back). Each
worker takes up to BATCH of the newest requests, reads their content hashes from the library in one
query (`Library.content_hashes`), reads their JPEGs from the thumbnail cache, makes one the cache lost
(`ThumbnailCache.make`; only then is the photo's path read), and crops each to a square of the
cell's size, or (for the justified grid) scales it to the row's height, uncropped; the UI thread only
turns the finished QImage into a pixmap. A video found by a query shows its frame at the moment that
matched (`set_moments`), any other video its poster frame.

The side asked for is in device pixels (a HiDPI screen asks for twice the cell). Where the cached
thumbnail (256 px on its longer side) would have to be enlarged to cover it, as at high zoom or on
HiDPI, the photo itself is decoded at the size needed, so cells stay sharp.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

from PySide6.QtCore import QObject, QRect, QSize, Qt, Signal
from PySide6.QtGui import QImage, QImageReader, QPixmap

from clipdesk.errors import ClipdeskError
from clipdesk.library.store import Library
from clipdesk.library.thumbnails import frame_thumbnail_key, thumbnail_cache
from clipdesk.runtime.raw import is_raw
from clipdesk.runtime.video_frames import VideoError, is_video, still_image
from clipdesk.ui.justified import MAX_ASPECT
from clipdesk.ui.workers import Lane, one_line

MAX_PENDING = 400
# Requests one worker takes at a time: one database query for all of them, yet the newest requests
# still wait for at most a few thumbnails.
BATCH = 8


def cover_square(image: QImage, side: int) -> QImage:
    """Scale `image` to cover a side x side square and crop the middle (no bars, aspect kept)."""
    if image.isNull() or side <= 0:
        return image
    scaled = image.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                          Qt.TransformationMode.SmoothTransformation)
    x, y = (scaled.width() - side) // 2, (scaled.height() - side) // 2
    return scaled.copy(QRect(x, y, side, side))


def fit_height(image: QImage, height: int) -> QImage:
    """`image` scaled to `height`, its aspect ratio kept (no crop). A photo more than MAX_ASPECT times as wide
    as high is cut to that ratio first: the justified grid shows it no wider (justified.py)."""
    if image.isNull() or height <= 0:
        return image
    widest = round(image.height() * MAX_ASPECT)
    if image.width() > widest:
        image = image.copy(QRect((image.width() - widest) // 2, 0, widest, image.height()))
    width = max(1, round(image.width() * height / image.height()))
    return image.scaled(width, height, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)


def read_image(path: str, max_side: int | None = None, moment: float | None = None) -> QImage:
    """A photo as an upright QImage, scaled down to fit max_side while decoding; a video as its frame at
    `moment` (seconds), or its poster frame. Safe off the UI thread."""
    if is_video(path):
        try:
            return _qimage(still_image(path, moment), max_side)
        except VideoError as exc:
            raise ClipdeskError(f"cannot show {path}: {exc}") from None
    if is_raw(path):  # Qt would show a RAW's small TIFF thumbnail, at best: LibRaw's preview or demosaic
        return _read_with_clipdesk(path, max_side, "not an image Qt reads")
    reader = QImageReader(path)
    reader.setAutoTransform(True)  # EXIF orientation
    if max_side:
        size = reader.size()
        if size.isValid() and max(size.width(), size.height()) > max_side:
            reader.setScaledSize(size.scaled(max_side, max_side, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        # Qt has no reader for HEIC, AVIF and others that clipdesk indexes: decode those as the indexer does.
        return _read_with_clipdesk(path, max_side, reader.errorString())
    return image


def _read_with_clipdesk(path: str, max_side: int | None, qt_error: str) -> QImage:
    from clipdesk.runtime.preprocess import load_image

    try:
        image = load_image(path, draft_size=max_side)
    except ClipdeskError:
        raise ClipdeskError(f"cannot show {path}: {qt_error}") from None
    return _qimage(image, max_side)


def _qimage(image, max_side: int | None) -> QImage:
    """A Pillow image as an RGB QImage, shrunk to fit max_side."""
    image = image.convert("RGB")
    if max_side:
        image.thumbnail((max_side, max_side))
    data = image.tobytes()
    return QImage(data, image.width, image.height, 3 * image.width, QImage.Format.Format_RGB888).copy()


def read_covering(path: str, side: int) -> QImage:
    """A photo decoded at the smallest size that covers a side x side square (JPEG decoders scale while
    decoding, so this costs far less than a full decode)."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and min(size.width(), size.height()) > side:
        scale = side / min(size.width(), size.height())  # the same whichever way EXIF turns it
        reader.setScaledSize(QSize(math.ceil(size.width() * scale), math.ceil(size.height() * scale)))
    image = reader.read()
    if image.isNull():
        raise ClipdeskError(f"cannot show {path}: {reader.errorString()}")
    return image


class ThumbnailLoader(QObject):
    # photo id, side, image: a square of that side, or (side negative) an uncropped image -side pixels high
    loaded = Signal(int, int, QImage)
    failed = Signal(int, str)  # photo id, one line

    def __init__(self, library: Library, threads: int = 2, parent: QObject | None = None):
        super().__init__(parent)
        self.library = library
        self._lane = Lane(threads, "clipdesk-thumbnails", self, nice=2)
        self._threads = threads
        self._lock = threading.Lock()
        self._stack: OrderedDict[tuple[int, int, bool], None] = OrderedDict()  # newest last
        self._running = 0
        self._stopped = False
        self._moments: dict[int, float] = {}  # video id -> the moment to show (a query's best frame)

    def set_moments(self, moments: dict[int, float]) -> None:
        with self._lock:
            self._moments = dict(moments)

    def moment(self, photo_id: int) -> float | None:
        return self._moments.get(int(photo_id))

    def request(self, photo_id: int, side: int, square: bool = True) -> None:
        """A thumbnail cropped to a side x side square, or (square False) scaled to `side` pixels high."""
        key = (int(photo_id), int(side), bool(square))
        with self._lock:
            if self._stopped:
                return
            if key in self._stack:
                self._stack.move_to_end(key)  # wanted again: serve it sooner
                return
            self._stack[key] = None
            while len(self._stack) > MAX_PENDING:
                self._stack.popitem(last=False)
            start = self._running < self._threads
            if start:
                self._running += 1
        if start:
            self._lane.submit(self._drain)

    def forget_pending(self) -> None:
        """Drop requests not yet started (the grid shows something else now)."""
        with self._lock:
            self._stack.clear()

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._stack or self._stopped:
                    self._running -= 1
                    return
                batch = [self._stack.popitem(last=True)[0] for _ in range(min(BATCH, len(self._stack)))]
            try:
                hashes = self.library.content_hashes(photo_id for photo_id, _, _ in batch)
            except Exception as exc:  # noqa: BLE001 - e.g. the database went away: every cell shows it
                hashes, problem = {}, exc
            else:
                problem = None
            for photo_id, side, square in batch:
                with self._lock:
                    if self._stopped:
                        break
                try:
                    if problem is not None:
                        raise problem
                    image = self._load(photo_id, side, hashes.get(photo_id), square)
                except Exception as exc:  # noqa: BLE001 - a bad photo shows a broken-image cell, nothing more
                    self._lane.post(self._emit_failed, (photo_id, one_line(exc)))
                else:
                    self._lane.post(self._emit_loaded, (photo_id, side if square else -side, image))

    # Signals are emitted on the UI thread only (see workers.py).
    def _emit_loaded(self, values: tuple) -> None:
        self.loaded.emit(*values)

    def _emit_failed(self, values: tuple) -> None:
        self.failed.emit(*values)

    def _load(self, photo_id: int, side: int, content_hash: str | None, square: bool = True) -> QImage:
        if not content_hash:
            raise ClipdeskError("this photo is no longer in the library")
        cache = thumbnail_cache()
        moment = self.moment(photo_id)
        key = content_hash if moment is None else frame_thumbnail_key(content_hash, moment)
        jpeg = cache.get(key)
        if jpeg is None:  # the cache lost it: make it again from the photo
            path = self.library.photo_paths([photo_id])[0]
            if path is None:
                raise ClipdeskError("this photo is no longer in the library")
            jpeg = cache.make(path, content_hash, moment)
        image = QImage.fromData(jpeg, "JPEG")
        if not image.isNull() and (min(image.width(), image.height()) if square else image.height()) < side:
            image = self._sharper(photo_id, side, image)
        if image.isNull():  # a damaged entry: dropped, so the next request makes it again
            cache.discard(key)
            raise ClipdeskError("damaged thumbnail in the cache; it is made again when shown next")
        return cover_square(image, side) if square else fit_height(image, side)

    def _sharper(self, photo_id: int, side: int, thumbnail: QImage) -> QImage:
        """The photo at the size that covers `side`, or the cached thumbnail where the photo cannot be read
        (a disconnected drive): softer, but shown."""
        path = self.library.photo_paths([photo_id])[0]
        if path is None or is_video(path):  # a video's frames are its thumbnails' size: decoding again gains little
            return thumbnail
        try:
            image = read_covering(path, side)
        except ClipdeskError:
            return thumbnail
        return image if min(image.width(), image.height()) > min(thumbnail.width(), thumbnail.height()) else thumbnail

    def stop(self, timeout_ms: int = 5000) -> None:
        with self._lock:
            self._stopped = True
            self._stack.clear()
        self._lane.shutdown(timeout_ms / 1000)


class PixmapCache:
    """Least recently used pixmaps by photo id, at one side length (a zoom change empties it)."""

    def __init__(self, capacity: int = 1000):
        self.capacity = capacity
        self._items: OrderedDict[int, QPixmap] = OrderedDict()

    def get(self, photo_id: int) -> QPixmap | None:
        pixmap = self._items.get(photo_id)
        if pixmap is not None:
            self._items.move_to_end(photo_id)
        return pixmap

    def put(self, photo_id: int, pixmap: QPixmap) -> None:
        self._items[photo_id] = pixmap
        self._items.move_to_end(photo_id)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def discard(self, photo_ids) -> None:
        for photo_id in photo_ids:
            self._items.pop(photo_id, None)

    def __len__(self) -> int:
        return len(self._items)
