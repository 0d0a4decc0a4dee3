"""The window's one door to the core: library, searcher, indexer and model, driven from worker threads.

Three lanes keep the UI thread free and the core's objects on the threads they expect:
- the reader lane (one thread) owns the `Searcher` (not thread-safe) and runs searches, listings,
  counts and small writes such as tagging, in the order they were asked for;
- the index lane (one thread) runs `index_folders`; the reader lane keeps searching meanwhile (the
  library is SQLite in WAL mode and the searcher catches up from its change log);
- thumbnails load on their own pool (thumbnails.py).
Results come back as signals on the UI thread. Every method here returns at once.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QKeySequence

from clipdesk.errors import ClipdeskError, EmptyLibraryError, send_warnings_to
from clipdesk.library.pathnames import display_path
from clipdesk.library.records import Folder, Photo
from clipdesk.library.sample_library import keep_sample_apart, sample_apart
from clipdesk.library.stacks import stack_paths
from clipdesk.library.store import Library
from clipdesk.runtime.lexicon import unread_note
from clipdesk.settings import load_settings
from clipdesk.tagging import tags as tagging
from clipdesk.tagging.label_sets import LabelSet, create_label_set, edit_label_set, get_label_set, label_sets
from clipdesk.tagging.tags import PhotoTag, TagCount
from clipdesk.ui.workers import Lane, SignalProgress

# A query with terms ranks the whole library; the grid shows this many of the best.
RANKED_RESULTS = 1000
# A query of filters alone (or none: all photos) lists every match.
ALL_MATCHES = 1 << 40
# What the window says where the core's EmptyLibraryError tells a CLI user to run `clipdesk index FOLDER`.
EMPTY_LIBRARY = "No photos in the library yet: add a folder (Ctrl+O), or drop one on the window"
NO_MODEL = "No model is installed: import one (Settings → Models → Import)"


def quote_term(text: str) -> str:
    """`text` as one quoted term of the query language (backslash and quote escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def like_query(path: str) -> str:
    return "like:" + quote_term(path)


def tag_query(name: str) -> str:
    return "tag:" + quote_term(name)


def folder_query(path: str) -> str:
    return "folder:" + quote_term(path)


VIDEOS_QUERY = "is:video"


@dataclass
class ResultSet:
    """What the grid shows: photos in order, with cosine scores when the query had terms."""

    query: str
    ids: np.ndarray  # int64
    paths: list[str]
    scores: np.ndarray | None  # float32, None for a listing without scores
    tag_view: str | None = None  # the tag, when the query is exactly one tag: filter (Delete untags there)
    folder_view: str | None = None
    names: list[str] | None = None  # file names for display; made from paths when not given
    note: str = ""  # for the status bar: words of the query the model never learned (runtime/lexicon.py)
    # The sample library, when the library also holds the user's photos: (its folder, whether these results
    # include it). None: nothing to say (no sample library, or nothing else beside it).
    sample: tuple[str, bool] | None = None
    # Videos among the results: photo id -> (the best frame's moment or None, duration), in seconds.
    videos: dict[int, tuple[float | None, float]] = field(default_factory=dict)
    # Width / height of each photo as displayed (EXIF orientation applied), float32; 1.0 where unknown. None:
    # not read (every photo is laid out square). The justified grid lays its rows out from these.
    aspects: np.ndarray | None = None

    def __post_init__(self) -> None:
        # Made where the results are made (a worker), not on the UI thread: 100,000 names take a while.
        if self.names is None:
            self.names = [display_path(os.path.basename(path)) for path in self.paths]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls, query: str = "") -> "ResultSet":
        return cls(query, np.zeros(0, np.int64), [], None)


@dataclass
class ModelState:
    name: str | None = None
    provider: str = ""  # "CPU" or "CUDA" once known
    device: str = "auto"
    error: str | None = None  # why no model is usable (none installed, broken package)
    bundled: bool = False  # shipped with the app (resources/models), not got or imported by the user
    description: str = ""  # the manifest's description
    # A model just chosen searches nothing until it has embedded the library: until then the previous
    # model's embeddings answer searches, and this names that model.
    searching_with: str | None = None

    @property
    def knows_no_photos(self) -> bool:
        """The bundled emoji model: it was never shown a photograph (its manifest says it knows emoji)."""
        return bool(self.name) and self.bundled and "emoji" in self.description.lower()


@dataclass
class SidebarData:
    total: int
    folders: list[tuple[Folder, int]]
    tags: list[TagCount] = field(default_factory=list)
    label_sets: list[LabelSet] = field(default_factory=list)
    problems: int = 0
    videos: int = 0  # of `total`

    @property
    def tag_names(self) -> list[str]:
        return [tag.name for tag in self.tags]


@dataclass
class PhotoDetails:
    photo: Photo
    tags: list[PhotoTag]
    stack: list[str] = field(default_factory=list)  # the files of the photo's stack (RAW + JPEG), if any


class LibraryService(QObject):
    modelChanged = Signal(object)  # ModelState
    resultsReady = Signal(object)  # ResultSet
    searchFailed = Signal(str, str)  # query, one-line message
    sidebarReady = Signal(object)  # SidebarData
    indexStarted = Signal(list)  # folders (display form); empty: the whole library
    indexProgress = Signal(str, int, int, float)  # stage, done, total (-1 unknown), items/s
    indexFinished = Signal(object)  # IndexSummary
    indexFailed = Signal(str)
    libraryChanged = Signal()  # folders changed outside indexing: refresh views
    tagsChanged = Signal()  # tags were added, removed, accepted or rejected
    historyChanged = Signal(object, object)  # what undo would undo, what redo would redo (None: nothing)
    labelRunProgress = Signal(str, int, int, float)  # stage, done, total, rate
    labelRunFinished = Signal(object)  # LabelRun, restricted to the photos it was asked for
    labelRunFailed = Signal(str)
    message = Signal(str)  # a one-line note for the status bar
    error = Signal(str)  # a one-line failure for the status bar

    def __init__(self, library: Library | None = None, parent: QObject | None = None):
        super().__init__(parent)
        settings = load_settings()
        # Warnings (a damaged library database) wait until the window listens, then go to the status bar.
        self._early_warnings: list[str] | None = []
        send_warnings_to(self._early_warnings.append)
        self.library = library or Library()  # paths.database_path() honours Settings → Library
        self.device = settings.get("device", "auto")
        self.model_state = ModelState(device=self.device)
        self._reader = Lane(1, "clipdesk-reader", self)
        self._indexer = Lane(1, "clipdesk-index", self)
        self._searcher = None  # lives on the reader lane
        self._next_searcher = None  # a newly chosen model's, until it has embedded the library
        self._package = None  # the current ModelPackage (read on both lanes; replaced whole)
        self._search_seq = 0
        self._seq_lock = threading.Lock()
        self._progress: SignalProgress | None = None
        self._pending_folders: list[str] | None = None  # asked for while an index ran
        self._closed = False
        self._warmed = False
        # The sample library's folder while the library also holds the user's photos (set with the sidebar's
        # data, read by searches): it stays out of results unless the user asks for it (show_sample).
        self.sample_apart: str | None = None
        self.show_sample = False

    # --- model ---

    @property
    def has_model(self) -> bool:
        return self._package is not None

    @property
    def model_key(self) -> str | None:
        """The embedding key of the model that searches and runs label sets now (store.embedding_model_key)."""
        searcher = self._searcher
        return searcher.model_key if searcher is not None else None

    def load_model(self) -> None:
        """(Re)open the default model with the device preference; modelChanged reports the outcome."""
        self.device = load_settings().get("device", "auto")
        if self._early_warnings is not None:
            for message in self._early_warnings:
                self.error.emit(message)
            self._early_warnings = None
            send_warnings_to(self.error.emit)
        if not self._warmed:
            self._warmed = True
            self._reader.submit(warm_up)
        self._reader.submit(self._load_model, self.device, on_done=self._model_loaded)
        self._reader.submit(self._open_index)

    def _load_model(self, device: str) -> tuple[ModelState, object]:
        from clipdesk.runtime.encoders import ClipModel, runtime_device
        from clipdesk.runtime.registry import model_entries, resolve_model
        from clipdesk.search.searcher import Searcher

        try:
            package = resolve_model(None)
        except ClipdeskError as exc:
            self._searcher = self._next_searcher = None
            return ModelState(None, "", device, str(exc)), None
        try:
            provider = runtime_device(device)
        except ClipdeskError:
            provider = "CPU"
        searcher = Searcher(self.library, ClipModel(package, device), resident=True)
        previous, self._next_searcher = self._searcher, None
        searching_with = None
        if previous is not None and previous.model_key != searcher.model_key and \
                not self._covers_library(searcher.model_key) and self._covers_library(previous.model_key):
            self._next_searcher, searching_with = searcher, previous.clip.name  # swapped in once indexed
        else:
            self._searcher = searcher
        where = package.path.resolve()
        bundled = any(entry.bundled and entry.path.resolve() == where for entry in model_entries().values())
        return ModelState(package.name, provider, device, bundled=bundled,
                          description=package.manifest.description or "", searching_with=searching_with), package

    def _covers_library(self, model_key: str) -> bool:
        """Whether `model_key` has embedded every photo that indexed (a library of none counts as covered)."""
        counts = self.library.counts()
        return counts["embeddings"].get(model_key, 0) >= counts["ok"]

    def _switch_when_indexed(self):
        """After an index: the model that was waiting takes over search once it covers the library."""
        waiting = self._next_searcher
        if waiting is None or not self._covers_library(waiting.model_key):
            return None
        waiting.refresh()  # its vectors read here, off the GUI thread, before the first search needs them
        self._searcher, self._next_searcher = waiting, None
        return waiting.clip.name

    def _switched(self, name) -> None:
        if name is None:
            return
        self.model_state = replace(self.model_state, searching_with=None)
        self.message.emit(f"Search now uses {name}")
        self.modelChanged.emit(self.model_state)

    def _open_index(self) -> None:
        """Load the search index now, while the app is idle, rather than at the first search: reading
        the index of a million photos into memory takes a few seconds. The text encoder and its lexicon
        (a few tenths of a second) too."""
        if self._searcher is not None:
            try:
                self._searcher.clip.text.lexicon  # noqa: B018 - read now, not at the first query
                self._searcher.refresh()
            except Exception:  # noqa: BLE001 - the first search meets the same failure and reports it
                pass

    def _model_loaded(self, outcome) -> None:
        state, package = outcome
        self._package = package
        self.model_state = state
        settle_heap()
        self.modelChanged.emit(state)

    # --- searching and listing ---

    def search(self, text: str) -> int:
        """Run a query ("" lists every photo); only the latest request's results are delivered."""
        with self._seq_lock:
            self._search_seq += 1
            seq = self._search_seq
        self._reader.submit(self._search, seq, text, on_done=self._deliver)
        return seq

    def _is_stale(self, seq: int) -> bool:
        with self._seq_lock:
            return seq != self._search_seq

    def _search(self, seq: int, text: str):
        from clipdesk.search.query import Query, parse_query

        if self._is_stale(seq):
            return None  # a newer query was typed while this one waited: skip the work
        try:
            query = parse_query(text) if text.strip() else Query()
        except ClipdeskError as exc:
            return seq, text, None, str(exc)
        query, sample = keep_sample_apart(query, self.sample_apart, self.show_sample)
        filters = query.filters
        only = not query.terms and not (filters.exclude_tags or filters.exclude_folders or filters.taken_from
                                        or filters.taken_until or filters.kind)
        tag_view = filters.tags[0] if only and len(filters.tags) == 1 and not filters.folders else None
        folder_view = filters.folders[0] if only and len(filters.folders) == 1 and not filters.tags else None
        if self._searcher is None:
            # No model: the views the sidebar offers (all photos, a folder, a tag) are plain listings;
            # anything that needs ranking or the query language's other filters waits for a model.
            if not only or len(filters.tags) > 1 or len(filters.folders) > 1:
                return seq, text, None, NO_MODEL + " to search"
            ids, paths = self.library.photo_listing(folder=filters.folders[0] if filters.folders else None,
                                                    tag=filters.tags[0] if filters.tags else None,
                                                    exclude=filters.exclude_folders[0] if filters.exclude_folders
                                                    else None)
            videos = {photo_id: (None, length) for photo_id, length in self.library.durations(ids.tolist()).items()}
            return seq, text, ResultSet(text, ids, paths, None, tag_view, folder_view, sample=sample,
                                        aspects=photo_aspects(self.library, ids), videos=videos), None
        scored = bool(query.terms)
        try:
            results = self._searcher.search(query, k=RANKED_RESULTS if scored else ALL_MATCHES)
        except EmptyLibraryError:
            return seq, text, None, EMPTY_LIBRARY
        except ClipdeskError as exc:
            return seq, text, None, str(exc)
        ids = np.fromiter((r.photo_id for r in results), np.int64, len(results))
        scores = np.fromiter((r.score for r in results), np.float32, len(results)) if scored else None
        unread = self._searcher.unread_words(query) if scored else []
        note = unread_note(self._searcher.clip.name, unread) if unread else ""
        videos = {r.photo_id: (r.time, r.duration) for r in results if r.duration is not None}
        return seq, text, ResultSet(text, ids, [r.path for r in results], scores, tag_view, folder_view,
                                    note=note, sample=sample, aspects=photo_aspects(self.library, ids),
                                    videos=videos), None

    def _deliver(self, outcome) -> None:
        if outcome is None or self._is_stale(outcome[0]):
            return
        _, text, results, problem = outcome
        if problem is not None:
            self.searchFailed.emit(text, problem)
        else:
            self.resultsReady.emit(results)  # the window shows results.note with them, and only with them

    def refresh_sidebar(self) -> None:
        self._reader.submit(self._sidebar, on_done=self._sidebar_done, on_error=self.error.emit)

    def _sidebar_done(self, data: SidebarData) -> None:
        self.sidebarReady.emit(data)

    def _sidebar(self) -> SidebarData:
        library = self.library
        with library.snapshot():
            folders = library.folders()
            counts = library.photo_counts_by_folder()
            totals = library.counts()
            tags = tagging.tag_counts(library)
            sets = label_sets(library)
        self.sample_apart = sample_apart(folders, counts)
        return SidebarData(sum(counts.values()), [(folder, counts.get(folder.id, 0)) for folder in folders],
                           tags, sets, totals["problems"], totals["videos"])

    def photo_details(self, photo_id: int, on_done) -> None:
        self._reader.submit(self._details, photo_id, on_done=on_done, on_error=self.error.emit)

    def _details(self, photo_id: int) -> PhotoDetails | None:
        photo = self.library.photo(photo_id)
        if photo is None:
            return None
        return PhotoDetails(photo, tagging.tags_of_photos(self.library, [photo_id])[photo_id],
                            stack_paths(self.library.conn, photo.path))

    def errors(self, on_done) -> None:
        self._reader.submit(self.library.errors, on_done=on_done, on_error=self.error.emit)

    # --- folders ---

    def add_folders(self, folders: Sequence[str]) -> None:
        """Add folders to the library and index them; without a model they are added, to be indexed later."""
        folders = [os.fspath(folder) for folder in folders]
        if not folders:
            return
        if self._package is None:
            self._reader.submit(self._add_only, folders, on_done=self._added_without_model,
                                on_error=self.error.emit)
        else:
            self.index(folders)

    def _add_only(self, folders: list[str]) -> list[str]:
        return [self.library.add_folder(folder).path for folder in folders]

    def _added_without_model(self, folders: list[str]) -> None:
        self.libraryChanged.emit()
        added = "Added 1 folder; it is" if len(folders) == 1 else f"Added {len(folders)} folders; they are"
        self.message.emit(f"{added} indexed once a model is installed")

    def remove_folder(self, path: str) -> None:
        if self.indexing:
            self.error.emit("Folders cannot be removed while indexing runs; cancel it or wait for it to finish")
            return
        self._reader.submit(self.library.remove_folder, path,
                            on_done=lambda count, p=path: self._removed(p, count), on_error=self.error.emit)

    def _removed(self, path: str, count: int) -> None:
        self.message.emit(f"Removed {display_path(path)} from the library ({count:,} photos; the files are "
                          f"untouched). Undo ({undo_keys()}) brings it back with its tags, and indexes it again")
        self.libraryChanged.emit()

    # --- indexing ---

    @property
    def indexing(self) -> bool:
        return self._progress is not None

    def index(self, folders: Sequence[str] | None = None) -> None:
        """Index folders (adding them), or every library folder when None. A request made while an index
        runs waits for it, merged with any other waiting request."""
        if self._closed:
            return
        if self._package is None:
            self.indexFailed.emit(NO_MODEL + " to index photos")
            return
        if self._progress is not None:
            if folders is None or self._pending_folders == []:
                self._pending_folders = []  # [] means: every folder
            else:
                self._pending_folders = (self._pending_folders or []) + list(folders)
            return
        progress = SignalProgress(self._indexer)
        progress.signals.changed.connect(self.indexProgress)
        self._progress = progress
        settings = load_settings()
        # One decoding thread fewer than cores: the UI thread keeps a core of its own.
        workers = max(1, (os.cpu_count() or 2) - 1)
        self._indexer.submit(self._run_index, self._package, None if folders is None else list(folders),
                             progress, workers, settings.get("device", "auto"),
                             on_done=self._index_done, on_error=self._index_failed)
        self.indexStarted.emit([display_path(folder) for folder in folders or []])

    def _run_index(self, package, folders, progress, workers: int, device: str):
        from clipdesk.library.indexer import index_folders

        try:
            return index_folders(self.library, folders, package, progress=progress, workers=workers, device=device,
                                 intra_op_threads=threads_setting(load_settings()))
        except EmptyLibraryError:
            raise ClipdeskError(EMPTY_LIBRARY) from None

    def cancel_index(self) -> None:
        if self._progress is not None:
            self._pending_folders = None
            self._progress.cancel()

    def _index_done(self, summary) -> None:
        self._progress = None
        self.indexFinished.emit(summary)
        if self._next_searcher is not None and not self._closed:
            self._reader.submit(self._switch_when_indexed, on_done=self._switched)
        self._next_index()

    def _index_failed(self, message: str) -> None:
        self._progress = None
        self.indexFailed.emit(message)
        self._next_index()

    def _next_index(self) -> None:
        pending, self._pending_folders = self._pending_folders, None
        if pending is not None and not self._closed:
            self.index(pending or None)

    # --- tags ---

    def tag_photos(self, name: str, photo_ids: Sequence[int], paths: Sequence[str] = ()) -> None:
        """Tag photos, given by id or (files dropped from a file manager) by path."""
        self._reader.submit(self._tag, name, list(photo_ids), list(paths), on_done=self._tagged,
                            on_error=self.error.emit)

    def _tag(self, name: str, photo_ids: list[int], paths: list[str]) -> tuple[str, int]:
        ids = photo_ids or tagging.photo_ids_for_paths(self.library, paths)
        tagging.add_tags(self.library, ids, [name])
        return name, len(ids)

    def _tagged(self, outcome: tuple[str, int]) -> None:
        name, count = outcome
        self.message.emit(f"Tagged {count:,} photo{'s' if count != 1 else ''} “{name}”")
        self.tagsChanged.emit()

    def untag_photos(self, name: str, photo_ids: Sequence[int]) -> None:
        self._reader.submit(self._untag, name, list(photo_ids), on_done=self._untagged, on_error=self.error.emit)

    def _untag(self, name: str, photo_ids: list[int]) -> tuple[str, int]:
        return name, tagging.remove_tags(self.library, photo_ids, [name])

    def _untagged(self, outcome: tuple[str, int]) -> None:
        name, count = outcome
        self.message.emit(f"Removed “{name}” from {count:,} photo{'s' if count != 1 else ''} "
                          f"({undo_keys()} undoes it)")
        self.tagsChanged.emit()

    def delete_tag(self, name: str) -> None:
        self._reader.submit(tagging.delete_tag, self.library, name,
                            on_done=lambda count, n=name: self._untagged((n, count)), on_error=self.error.emit)

    def review_suggestions(self, chosen: dict[str, Sequence[int]], accept: bool) -> None:
        """Accept (the suggestion becomes the user's tag) or reject (and never suggest it again) suggestions
        of several labels, as one change to undo."""
        chosen = {label: list(ids) for label, ids in chosen.items() if ids}
        if chosen:
            self._reader.submit(tagging.review, self.library, chosen, accept,
                                on_done=lambda outcome, a=accept: self._reviewed(outcome, a), on_error=self.error.emit)

    def _reviewed(self, outcome: tagging.Reviewed, accept: bool) -> None:
        count = outcome.changed
        text = f"{'Accepted' if accept else 'Rejected'} {count:,} suggestion{'s' if count != 1 else ''}"
        if outcome.passed_over:
            text += (f"; {outcome.passed_over:,} left as they are: you tagged them with another label of the set")
        self.message.emit(f"{text} ({undo_keys()} undoes it)")
        self.tagsChanged.emit()

    def stored_suggestions(self, labels: Sequence[str], on_done) -> None:
        """The library's open suggestions of these labels, by tag (tagging.suggestions)."""
        self._reader.submit(tagging.suggestions, self.library, list(labels), on_done=on_done,
                            on_error=self.error.emit)

    # --- undo and redo ---

    def refresh_history(self) -> None:
        self._reader.submit(self.library.next_steps, on_done=lambda steps: self.historyChanged.emit(*steps),
                            on_error=self.error.emit)

    def undo(self, redo: bool = False) -> None:
        """Undo (or redo) the newest change to tags or folders; a folder back in the library is indexed again."""
        step = self.library.redo if redo else self.library.undo
        self._reader.submit(step, not self.indexing, on_done=lambda done, r=redo: self._stepped(done, r),
                            on_error=self.error.emit)

    def _stepped(self, step, redo: bool) -> None:
        if step is None:
            self.message.emit("Nothing to redo" if redo else "Nothing to undo")
            return
        text = f"{'Undone' if step.undone else 'Redone'}: {step.description}"
        if step.folders and self._package is not None:
            text += "; its photos and tags are back, and are being indexed again for search"
            self.index(step.folders)
        elif step.folders:
            text += "; its photos and tags are back, to be indexed again once a model is installed"
        self.message.emit(text)
        self.tagsChanged.emit()  # the window refreshes everything on it; the tagging panel its list

    # --- label sets ---

    def save_label_set(self, name: str, labels: Sequence[str], on_done) -> None:
        """Create the label set, or give an existing one these labels."""
        self._reader.submit(self._save_label_set, name, list(labels), on_done=on_done,
                            on_error=self.labelRunFailed.emit)

    def _save_label_set(self, name: str, labels: list[str]) -> LabelSet:
        try:
            current = get_label_set(self.library, name)
        except ClipdeskError:
            saved = create_label_set(self.library, name, labels)
        else:
            unchanged = [label.casefold() for label in current.labels] == [label.casefold() for label in labels]
            saved = current if unchanged else edit_label_set(self.library, current.name, labels=labels)
        self._note_unread(saved.labels)
        return saved

    def _note_unread(self, texts: Sequence[str]) -> None:
        """Tell the user which words of these labels the model never learned (runtime/lexicon.py)."""
        unread = self._searcher.clip.text.unread(texts) if self._searcher is not None else []
        if unread:
            self.message.emit(unread_note(self._searcher.clip.name, unread))

    def run_label_set(self, name: str, photo_ids: Sequence[int] | None = None) -> SignalProgress:
        """Suggest tags from a label set, over the whole library or over some photos (only they are scored
        and get new suggestions); suggestions are stored, to review at leisure. Returns the progress,
        whose cancel() stops the run before it writes anything."""
        progress = SignalProgress(self._reader)
        progress.signals.changed.connect(self.labelRunProgress)
        self._reader.submit(self._run_label_set, name, None if photo_ids is None else list(photo_ids), progress,
                            on_done=self.labelRunFinished.emit, on_error=self.labelRunFailed.emit)
        return progress

    def _run_label_set(self, name: str, photo_ids: list[int] | None, progress: SignalProgress):
        from clipdesk.tagging.suggest import run_label_set

        if self._searcher is None:
            raise ClipdeskError(NO_MODEL + " to suggest tags")
        try:
            return run_label_set(self.library, name, self._searcher.clip, progress=progress, photo_ids=photo_ids)
        except EmptyLibraryError:
            raise ClipdeskError(EMPTY_LIBRARY) from None

    # --- shutting down ---

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop indexing (the batch in flight is committed), wait for the lanes, close the database.
        Returns False when work was still running after the timeout (the database is then left open)."""
        self._closed = True
        self.cancel_index()
        self._reader.clear()
        finished = self._indexer.shutdown(timeout_ms / 1000) and self._reader.shutdown(timeout_ms / 1000)
        if finished:
            self.library.close()
        return finished


# Above this many results the aspects are read in one pass over the photos table rather than by id.
WHOLE_TABLE = 20_000


def photo_aspects(library: Library, ids: np.ndarray) -> np.ndarray:
    """Width / height of each photo (as displayed: the library stores both with EXIF orientation applied), in
    the order of `ids`, as float32; 1.0 for a photo whose size is unknown (not decoded, or gone meanwhile).
    A listing of the whole library reads the table once, ordered by its primary key (100,000 rows: ~50 ms);
    a page of ranked results reads only its own rows."""
    aspects = np.ones(len(ids), np.float32)
    if not len(ids):
        return aspects
    conn = library.conn
    if len(ids) > WHOLE_TABLE:
        rows = conn.execute("SELECT id, width, height FROM photos ORDER BY id").fetchall()
    else:
        rows = []
        listed = [int(photo_id) for photo_id in ids]
        for start in range(0, len(listed), 500):  # under SQLite's bound-parameter limit
            part = listed[start:start + 500]
            rows += conn.execute(f"SELECT id, width, height FROM photos WHERE id IN ({','.join('?' * len(part))}) "
                                 "ORDER BY id", part).fetchall()
        rows.sort()
    if not rows:
        return aspects
    table = np.array([(row[0], row[1] or 0, row[2] or 0) for row in rows], np.int64)
    known = table[(table[:, 1] > 0) & (table[:, 2] > 0)]
    if not len(known):
        return aspects
    where = np.searchsorted(known[:, 0], ids)
    where = np.minimum(where, len(known) - 1)
    found = known[where, 0] == ids
    aspects[found] = known[where[found], 1] / known[where[found], 2]
    return aspects


def undo_keys() -> str:
    """The platform's undo shortcut as its menus write it: Ctrl+Z, or ⌘Z on macOS."""
    return QKeySequence(QKeySequence.StandardKey.Undo).toString(QKeySequence.SequenceFormat.NativeText)


def settle_heap() -> None:
    """Collect once, then exempt what is alive now (Qt, the modules, the model) from the cyclic garbage
    collector's later passes. A full collection holds the GIL while it walks every tracked object: with a few
    hundred thousand of them (measured: 142 ms for 262,000) one started by an indexing thread stalled the
    window for that long. Afterwards a collection walks only what was made since."""
    gc.collect()
    gc.freeze()


def warm_up() -> None:
    """Import what the first index and the first text search need, and load the tokenizer, while the
    app is idle after start. Loading extension modules (Pillow, pi-heif, ONNX Runtime) holds the
    GIL for up to a few hundred milliseconds: done in the middle of the first index run, that froze
    the window (seen with py-spy)."""
    from clipdesk.library import indexer  # noqa: F401 - Pillow and the decoder
    from clipdesk.library.scanner import supported_extensions
    from clipdesk.runtime.tokenizer import get_tokenizer

    supported_extensions()  # registers the HEIF decoder
    get_tokenizer()


def threads_setting(settings: dict) -> int | None:
    """The cap on ONNX Runtime's threads while indexing (settings' `index_threads`), or None: its default."""
    value = settings.get("index_threads")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
