"""Indexing: scan folders, decode what changed in worker threads, embed in batches, commit per batch.

    summary = index_folders(library, ["~/Pictures"], model="my-model", progress=TerminalBar(...))

Pipeline: worker threads read, hash and decode photos (Pillow and hashlib release the GIL) while the
calling thread runs the image encoder on the previous batch (ONNX Runtime releases it too). Each
batch, with every other result gathered meanwhile, is written in one transaction: a killed run loses
at most the batch in flight, and the next run redoes exactly what is not committed.

Per file, cheapest first: unchanged size and mtime -> skipped unopened; same bytes as before -> new
stat recorded; same bytes as a photo no longer where the library had it -> that photo moves here
(id, embeddings and tags kept); same bytes as an embedded photo -> its vector and metadata copied;
otherwise decoded and embedded. A video (runtime/video_frames.py, when this install reads videos) is
sampled every few seconds; each frame is embedded and kept with its moment, and the video's own vector
is their normalised mean (library/video_decode.py). Keywords in a new, changed or moved file's XMP
sidecars and embedded XMP/IPTC become the user's tags (tagging/keywords.py; tags the user removed stay
removed). A file that
fails is recorded with its reason and never stops the run. Photos whose files are gone leave the
library at the end of a complete (not cancelled) run; photos in folders that could not be listed
(unmounted drive, no permission) stay.

Progress: `update(files_found, None, stage="scanning")` while scanning, then `update(done, total,
failed=N)` per file processed; `progress.cancel()` (any thread) stops after committing what is ready.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np

from clipdesk import paths
from clipdesk.errors import ClipdeskError, EmptyLibraryError, disk_full_error, is_disk_full
from clipdesk.library.decode import MAX_PIXELS, PhotoError, decode_photo, read_file
from clipdesk.library.lock import IndexLock
from clipdesk.library.pathnames import PathInput, display_path, is_within, to_db_path
from clipdesk.library.plan import MissingPhotos, Plan, WorkItem, add_to_plan
from clipdesk.library.records import ERROR, OK, PhotoMetadata
from clipdesk.library.scanner import scan_folder
from clipdesk.library.store import IndexedRow, Library, embedding_model_key, vector_to_blob
from clipdesk.library.thumbnails import frame_thumbnail_key, store_thumbnails
from clipdesk.library.video_decode import decode_video
from clipdesk.progress import Progress
from clipdesk.runtime.package import ModelPackage
from clipdesk.runtime.raw import raw_format
from clipdesk.runtime.video_frames import Stopped, is_video, video_vector
# The library's one use of tagging (which builds on the library): keywords.py needs only
# library.pathnames, which imports no clipdesk module, so there is no import cycle.
from clipdesk.tagging.keywords import read_keywords, store_keywords

DEFAULT_BATCH_SIZE = 32
# Results without pixels (errors, moves, copies) are committed at least this often.
MAX_PENDING_WRITES = 256
# The GIL switch interval while indexing (Python's default is 5 ms). Each photo costs a worker about
# ten GIL hand-backs (open, stat, read, SQLite, Pillow's decode and encode release it), and each may
# wait a whole interval while another thread runs Python: reading a 110 KB file took 170-210 us
# instead of 30. At 1 ms the indexer ran 420-434 photos/s against 393-408 at 5 ms (imagenet-sample,
# default model, alternating runs); 0.5 and 0.2 ms were no better.
GIL_SWITCH_INTERVAL = 0.001


@contextmanager
def short_gil_switch_interval(interval: float) -> Iterator[None]:
    """Python's GIL switch interval at most `interval` inside the block (it is process-wide: a shorter
    one also lets a GUI thread in sooner), restored afterwards."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, interval))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@dataclass
class IndexSummary:
    model: str
    folders: int = 0
    scanned: int = 0  # photo files found
    indexed: int = 0  # new or changed files now in the library (moves not included)
    embedded: int = 0  # vectors computed by the model
    reused: int = 0  # vectors copied from a photo with identical bytes
    unchanged: int = 0
    moved: int = 0
    removed: int = 0
    failed: int = 0  # files that could not be indexed in this run
    videos_skipped: int = 0  # video files found by an install that cannot read videos (video_support())
    damaged_vectors: int = 0  # stored vectors found damaged at the start, deleted so that this run re-makes them
    errors: int = 0  # files and folders in error in the whole library after the run
    cancelled: bool = False
    seconds: float = 0.0
    folder_problems: list[str] = field(default_factory=list)  # folders whose contents are unknown this time

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Prepared:
    """A worker's result for one file; exactly one of the optional groups is set."""

    item: WorkItem
    size: int | None = None
    mtime_ns: int | None = None
    hash: str | None = None
    error: PhotoError | None = None
    moved_from: IndexedRow | None = None  # a missing photo with these bytes, moving here
    metadata: PhotoMetadata | None = None  # with pixels (to embed) or vector (copied)
    pixels: np.ndarray | None = None  # (3, R, R) for a photo, (F, 3, R, R) for a video's frames
    thumbnail: bytes | None = None  # JPEG, with pixels
    vector: bytes | None = None
    frame_times: list[float] | None = None  # a video's sampled moments (seconds), with pixels
    frame_thumbnails: list[bytes] | None = None
    frame_vectors: list[bytes] | None = None  # one per moment, once embedded
    copied_from: int | None = None  # the photo whose vector (and a video's frames) is copied
    stopped: bool = False  # a video whose sampling the run's cancel cut short: nothing to record
    keywords: list[str] = field(default_factory=list)  # other programs' keywords, to become the user's tags

    @property
    def needs_model(self) -> bool:
        return self.pixels is not None

    @property
    def inputs(self) -> np.ndarray:
        """The model inputs, (F, 3, R, R): one for a photo, one per sampled frame for a video."""
        return self.pixels if self.frame_times is not None else self.pixels[None]


class Indexer:
    def __init__(self, library: Library, package: ModelPackage, *, progress: Progress | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, workers: int | None = None, device: str = "auto",
                 max_pixels: int = MAX_PIXELS, intra_op_threads: int | None = None):
        """`intra_op_threads` caps ONNX Runtime's threads for the image encoder (None: its default, one
        per core); a GUI on a small machine keeps cores free for itself and the decoders."""
        if batch_size < 1 or (workers is not None and workers < 1):
            raise ClipdeskError(f"batch size and workers must be at least 1 (got {batch_size} and {workers})")
        if intra_op_threads is not None and intra_op_threads < 1:
            raise ClipdeskError(f"intra-op threads must be at least 1 (got {intra_op_threads})")
        self.library = library
        self.package = package
        self.preprocessing = package.preprocessing()  # per photo, on decoder threads: parsed once
        self.model = embedding_model_key(package)
        self.progress = progress or Progress()
        self.batch_size = batch_size
        self.workers = workers or os.cpu_count() or 2
        self.device = device
        self.max_pixels = max_pixels
        self.intra_op_threads = intra_op_threads
        self._encoder = None
        self._missing = MissingPhotos()

    # --- the run ---

    def run(self, folders: Sequence[PathInput] | None = None) -> IndexSummary:
        """Index the given folders (adding them to the library), or every library folder when None. A full
        disk stops the run with one line (DiskFullError); every batch committed before stays."""
        summary = IndexSummary(self.model)
        try:
            return self._run(folders, summary)
        except (sqlite3.Error, OSError) as exc:
            if not is_disk_full(exc):
                raise
            kept = self.library.counts()["ok"]  # committed: the batch that failed is not among them
            left = max(summary.scanned - kept, 0)
            need = self._space_per_photo() * left
            raise disk_full_error(self.library.path.parent,
                                  f"indexing stopped; the {kept:,} photos indexed so far are kept, and about "
                                  f"{need / 1e6:,.0f} MB more is needed for the {left:,} left") from None

    def _space_per_photo(self) -> float:
        """What one photo has taken so far in the library and the thumbnail cache (bytes)."""
        files = [self.library.path, self.library.path.with_name(self.library.path.name + "-wal"),
                 paths.thumbnail_cache_path()]
        used = sum(path.stat().st_size for path in files if path.exists())
        return used / max(self.library.counts()["photos"], 1)

    def _run(self, folders: Sequence[PathInput] | None, summary: IndexSummary) -> IndexSummary:
        started = time.monotonic()
        with IndexLock(self.library.path):
            targets = self._targets(folders)
            self._targets_by_id, self._removed = dict(targets), set()
            summary.damaged_vectors = self.library.forget_damaged_embeddings(self.model)
            summary.folders = len(targets)
            plan, scans = self._scan(targets, summary)
            self._missing = plan.missing
            summary.unchanged = plan.unchanged
            with short_gil_switch_interval(GIL_SWITCH_INTERVAL):
                self._process(plan.work, summary)
            summary.cancelled = self.progress.cancelled
            with self.library.transaction():
                live = self._live_folders(summary)
                for (folder_id, target), scan in zip(targets, scans, strict=True):
                    if folder_id in live:
                        self.library.replace_scan_errors(folder_id, target, scan.problems)
                if not summary.cancelled:  # unprocessed files could still be moves of "missing" photos
                    summary.removed = self.library.delete_photos(self._missing.unclaimed_ids())
            if summary.embedded or summary.reused or summary.removed:
                self.library.compact_change_log()
        summary.errors = len(self.library.errors())
        summary.seconds = round(time.monotonic() - started, 3)
        return summary

    def _targets(self, folders: Sequence[PathInput] | None) -> list[tuple[int, bytes]]:
        """(library folder id, folder to scan) pairs; a folder inside another given one is scanned once."""
        if folders is None:
            known = self.library.folders()
            if not known:
                raise EmptyLibraryError("the library has no folders yet; add one with `clipdesk index FOLDER`")
            pairs = [(folder.id, os.fsencode(folder.path)) for folder in known]
        else:
            given = [to_db_path(os.path.expanduser(os.fsdecode(path))) for path in folders]
            for path in given:  # all checked before anything changes
                if not os.path.isdir(path):
                    problem = "no such folder" if not os.path.exists(path) else "not a folder"
                    raise ClipdeskError(f"{display_path(path)}: {problem}; clipdesk indexes folders of photos")
            pairs = [(self.library.add_folder(path).id, path) for path in given]
        outer = [(folder_id, path) for folder_id, path in pairs
                 if not any(other != path and is_within(path, other) for _, other in pairs)]
        return list(dict.fromkeys(outer))

    def _scan(self, targets: list[tuple[int, bytes]], summary: IndexSummary):
        plan, scans, visited = Plan(), [], set()
        # clipdesk's own folders may sit inside a photo folder: indexing its thumbnails would feed on itself.
        own = frozenset(to_db_path(folder) for folder in (paths.data_dir(), paths.cache_dir()))
        for folder_id, target in targets:
            scan = scan_folder(target, visited, skip=own, on_folder=lambda found: self.progress.update(
                summary.scanned + found, None, stage="scanning"))
            summary.scanned += len(scan.files)
            summary.videos_skipped += scan.videos_skipped
            summary.folder_problems += [f"{display_path(path)}: {reason}" for path, reason in scan.problems
                                        if path in scan.unlisted]
            add_to_plan(plan, scan, self.library.indexed_rows(target, self.model), folder_id)
            scans.append(scan)
        return plan, scans

    # --- the pipeline ---

    def _process(self, work: list[WorkItem], summary: IndexSummary) -> None:
        if not work:
            return
        total, done = len(work), 0
        batch: list[Prepared] = []  # waiting for the model
        others: list[Prepared] = []  # ready to write
        inputs = 0  # model inputs in `batch`: a video brings one per sampled frame
        window = 2 * self.batch_size + 2 * self.workers  # results in flight: enough to decode during inference
        queue = iter(work)
        in_flight: deque[tuple[Future, bool]] = deque()
        waiting: WorkItem | None = None
        executor = ThreadPoolExecutor(self.workers, thread_name_prefix="clipdesk-decode")
        try:
            while True:
                while not self.progress.cancelled and len(in_flight) < window:
                    item = waiting or next(queue, None)
                    if item is None:
                        break
                    video = is_video(item.found.path)
                    # A video's frames are up to 64 model inputs: at most one per worker is held at a time.
                    if video and sum(held for _, held in in_flight) >= self.workers:
                        waiting = item
                        break
                    waiting = None
                    in_flight.append((executor.submit(self._prepare, item), video))
                if not in_flight:
                    break
                prepared = in_flight.popleft()[0].result()
                if prepared.needs_model:
                    batch.append(prepared)
                    inputs += len(prepared.inputs)
                else:
                    others.append(prepared)
                if inputs >= self.batch_size or len(others) >= MAX_PENDING_WRITES:
                    self._commit(batch, others, summary)
                    batch, others, inputs = [], [], 0
                done += 1
                self.progress.update(done, total, failed=summary.failed)
            self._commit(batch, others, summary)
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
        self.progress.update(done, total, failed=summary.failed)

    def _prepare(self, item: WorkItem) -> Prepared:
        """Runs in a worker thread: everything about one file short of the model and the database writes."""
        found, row = item.found, item.row
        if found.error:
            return Prepared(item, error=PhotoError(found.error, retry=True))
        video = is_video(found.path)
        try:
            content = read_file(found.path, keep_data=not video)
        except PhotoError as exc:
            return Prepared(item, size=found.size, error=exc)
        result = Prepared(item, size=content.size, mtime_ns=content.mtime_ns, hash=content.hash)
        if row and row.hash == content.hash and row.embedded:
            return result  # touched, or readable again, with the same bytes: only the stat and status change
        # New, changed or moved: sidecars and embedded XMP/IPTC are read here, off the writing thread.
        result.keywords = read_keywords(os.fsdecode(found.path), content.data)
        result.moved_from = self._missing.claim(content.hash)
        if result.moved_from and result.moved_from.embedded:
            return result
        copy = self.library.embedded_copy(content.hash, self.model)
        if copy:
            result.metadata, result.vector, result.copied_from = copy
            return result
        try:
            if video:
                decoded = decode_video(found.path, **self.preprocessing, stop=lambda: self.progress.cancelled)
                result.frame_times, result.frame_thumbnails = decoded.times, decoded.frame_thumbnails
            else:
                decoded = decode_photo(content, max_pixels=self.max_pixels, raw_format=raw_format(found.path),
                                       **self.preprocessing)
        except PhotoError as exc:
            result.error = exc
        except Stopped:
            result.stopped = True  # cancelled mid-video: the next run indexes it
        except Exception as exc:  # noqa: BLE001 - one photo must never stop a run; the reason is recorded
            result.error = PhotoError(f"unexpected error while decoding ({type(exc).__name__}: {exc})")
        else:
            result.metadata, result.pixels, result.thumbnail = decoded.metadata, decoded.pixels, decoded.thumbnail
        return result

    def _encoder_for_batch(self):
        if self._encoder is None:  # created on first need: re-indexing an unchanged library never loads it
            from clipdesk.runtime.encoders import ImageEncoder

            self._encoder = ImageEncoder(self.package, self.device, self.intra_op_threads)
        return self._encoder

    def _commit(self, batch: list[Prepared], others: list[Prepared], summary: IndexSummary) -> None:
        if batch:
            inputs = [prepared.inputs for prepared in batch]
            vectors = self._encoder_for_batch().encode_pixels(np.concatenate(inputs), sum(map(len, inputs)))
            ends = np.cumsum([len(part) for part in inputs])
            for prepared, end, part in zip(batch, ends, inputs, strict=True):
                own = vectors[end - len(part):end]
                if prepared.frame_times is not None:  # a video: its frames, and their mean as its own vector
                    prepared.frame_vectors = [vector_to_blob(vector) for vector in own]
                    own = video_vector(own)[None]
                prepared.vector, prepared.pixels = vector_to_blob(own[0]), None
            summary.embedded += len(batch)
        summary.reused += sum(1 for prepared in others if prepared.metadata is not None)
        if not batch and not others:
            return
        with self.library.transaction():
            live = self._live_folders(summary)
            for prepared in others + batch:
                if prepared.item.folder_id in live:  # a folder removed under the indexer: its files are skipped
                    self._write(prepared, summary)
        store_thumbnails([(prepared.hash, prepared.thumbnail) for prepared in batch if prepared.thumbnail] +
                         [(frame_thumbnail_key(prepared.hash, moment), jpeg) for prepared in batch
                          for moment, jpeg in zip(prepared.frame_times or (), prepared.frame_thumbnails or ())])

    def _live_folders(self, summary: IndexSummary) -> set[int]:
        """The folders still in the library (read inside the writing transaction); each one removed while
        this run indexed it gets a note, once."""
        live = self.library.folder_ids()
        for folder_id, target in self._targets_by_id.items():
            if folder_id not in live and folder_id not in self._removed:
                self._removed.add(folder_id)
                summary.folder_problems.append(f"{display_path(target)}: removed from the library while it was "
                                               "being indexed; its remaining photos were skipped")
        return live

    def _write(self, p: Prepared, summary: IndexSummary) -> None:
        """Record one file's result; runs inside the batch's transaction."""
        library, item = self.library, p.item
        row, path = item.row, item.found.path
        if p.stopped:
            return
        if p.error:
            summary.failed += 1
            if p.error.retry and row:
                library.mark_unreadable(row.id, p.error.reason)
                return
            if row and row.hash != p.hash:
                library.forget_content(row.id)
            mtime_ns = None if p.error.retry else p.mtime_ns
            library.save_photo(item.folder_id, path, p.size, mtime_ns, p.hash, None, ERROR, p.error.reason)
            return
        if p.moved_from:
            if row:  # renamed over another photo: that one's file is gone
                library.delete_photos([row.id])
            library.refresh_photo(p.moved_from.id, item.folder_id, path, p.size, p.mtime_ns)
            photo_id = p.moved_from.id
            summary.moved += 1
        elif p.metadata is None:  # same bytes, touched
            library.refresh_photo(row.id, item.folder_id, path, p.size, p.mtime_ns)
            summary.unchanged += 1
            return
        else:
            if row and row.hash != p.hash:
                library.forget_content(row.id)
            summary.indexed += 1
        if p.metadata is not None:
            photo_id = library.save_photo(item.folder_id, path, p.size, p.mtime_ns, p.hash, p.metadata, OK)
            library.set_embedding(photo_id, self.model, p.vector)
            if p.frame_vectors is not None:
                library.set_video_frames(photo_id, self.model, zip(p.frame_times, p.frame_vectors, strict=True))
            elif p.copied_from is not None and p.metadata.duration is not None:
                library.copy_video_frames(p.copied_from, photo_id, self.model)
        store_keywords(library.conn, photo_id, p.keywords)


def index_folders(library: Library, folders: Iterable[PathInput] | None = None, model=None, *,
                  progress: Progress | None = None, **options) -> IndexSummary:
    """Index folders with a model (a name, a package folder, a ModelPackage, or None for the default).
    `options` are Indexer's: batch_size, workers, device, max_pixels, intra_op_threads."""
    from clipdesk.runtime.registry import resolve_model

    package = model if isinstance(model, ModelPackage) else resolve_model(model)
    return Indexer(library, package, progress=progress, **options).run(
        None if folders is None else list(folders))
