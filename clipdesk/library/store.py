"""The photo library's SQLite store: folders, photos, embeddings, errors.

Opening a `Library` creates or migrates the database (schema.py) at `paths.database_path()` or a
given path, in WAL mode with foreign keys on: readers (GUI, CLI, search) read while an index runs.

Threads: a `Library` may be shared between threads. Each thread gets its own connection on first use
(connections of threads that have ended are closed when a new one opens); `close()` closes them all
and must be called when no thread uses the library any more.

Writes happen inside `with library.transaction():` (BEGIN IMMEDIATE ... COMMIT); the indexer commits
one transaction per batch.

Keeping an in-memory vector index current (search):

    marker = library.change_marker()              # first, so nothing written meanwhile is missed
    ids, vectors = library.embedding_matrix(model)
    ...
    changes = library.embedding_changes(model, marker)
    # drop changes.removed_ids; insert or overwrite changes.photo_ids with changes.vectors
    marker = changes.marker

`embedding_changes` reports every photo whose embedding for `model` was written or deleted after the
marker (triggers log each change with an increasing `seq`, whoever the writer), with the vector it has
now; applying it twice is harmless. `compact_change_log()` keeps the log to one entry per
(photo, model) without changing what any marker sees.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlite_utils

from clipdesk import paths
from clipdesk.errors import ClipdeskError, disk_full_error, is_disk_full, warn, warnings_wanted
from clipdesk.library import history
from clipdesk.library.pathnames import PathInput, display_path, from_db_path, is_within, subtree_range, to_db_path
from clipdesk.library.records import ERROR, OK, ErrorRecord, Folder, Photo, PhotoMetadata
from clipdesk.library.schema import migrate
from clipdesk.library.stacks import stack_fields
from clipdesk.sqlite_threads import ThreadConnections, write_transaction

VECTOR_DTYPE = np.dtype("<f2")
BUSY_TIMEOUT_S = 30.0
_METADATA_COLUMNS = PhotoMetadata.names()
_PHOTO_COLUMNS = ("id", "folder_id", "path", "size", "mtime_ns", "hash", *_METADATA_COLUMNS, "status", "error",
                  "indexed_at")
_PHOTO_SELECT = "SELECT " + ", ".join(_PHOTO_COLUMNS) + " FROM photos"
_FETCH_CHUNK = 8192
# photo_listing's orders; "newest" is the order search lists filter-only queries in.
_LISTING_ORDERS = {"newest": "p.taken_at IS NULL, p.taken_at DESC, p.path",
                   "oldest": "p.taken_at IS NULL, p.taken_at ASC, p.path",
                   "path": "p.path"}


def in_library(table: str = "photos") -> str:
    """"Photos in the library", the one definition that every count and listing uses (sidebar, header,
    `clipdesk info`), as an SQL condition on `table` (a name or alias of photos): files that were read and
    indexed, a stack counted once (its RAW or video beside a still is left out: stacks.py). A file that
    cannot be read is a problem (`errors()`), not a photo."""
    return (f"{table}.status = 'ok' AND NOT ({table}.companion = 1 AND EXISTS (SELECT 1 FROM photos AS still "
            f"WHERE still.stem = {table}.stem AND still.companion = 0 AND still.status = 'ok'))")


IN_LIBRARY = in_library()
VECTOR_NORM_TOLERANCE = 0.02  # float16 rounding moves a unit vector's norm by about 1e-3


def embedding_model_key(package) -> str:
    """The `embeddings.model` value for a model package: its name plus a digest of the image tower's
    files (graph and external weights), so a re-exported or retrained package of the same name never
    shares vectors with the old one."""
    files = package.manifest.files
    if package.manifest.io is not None:  # graphs made elsewhere: the image graph wherever the io block puts it
        image = package.io.image.file
        digests = [f"{image}:{files[image].get('sha256')}"] if image in files else []
    else:
        digests = [f"{name}:{files[name].get('sha256')}" for name in sorted(files) if name.startswith("image.")]
    if not digests:
        return package.manifest.name
    return f"{package.manifest.name}@{hashlib.sha256(' '.join(digests).encode()).hexdigest()[:12]}"


def vector_to_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=VECTOR_DTYPE).tobytes()


@dataclass(frozen=True)
class IndexedRow:
    """What the indexer needs to know about a photo already in the library."""

    id: int
    path: bytes
    size: int | None
    mtime_ns: int | None
    hash: str | None
    status: str
    error: str | None
    embedded: bool  # has an embedding for the model being indexed


@dataclass
class EmbeddingChanges:
    marker: int  # pass it as `since` next time
    photo_ids: np.ndarray  # int64 (N,): embeddings written since the marker ...
    vectors: np.ndarray  # float16 (N, D): ... and their current vectors
    removed_ids: np.ndarray  # int64: photos that no longer have an embedding for the model


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """journal_mode = WAL, waiting for a connection that is creating the same new database: the switch
    needs an exclusive lock and SQLite answers "database is locked" at once instead of waiting for it."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


_checked: set[str] = set()


def _report_damage(path: Path, conn: sqlite3.Connection) -> None:
    """A quick check of the database, once per process, when a front end listens for warnings."""
    if not warnings_wanted() or str(path) in _checked:
        return
    _checked.add(str(path))
    from clipdesk.library.repair import check

    health = check(conn)
    if not health.ok:
        warn(f"the library database {path} is damaged ({health.line()}); `clipdesk repair` backs it up and "
             "repairs it, keeping your tags")


def _photo_from_row(row: Sequence) -> Photo:
    values = dict(zip(_PHOTO_COLUMNS, row, strict=True))
    metadata = PhotoMetadata(**{name: values.pop(name) for name in _METADATA_COLUMNS})
    values["path"] = from_db_path(values["path"])
    return Photo(metadata=metadata, **values)


def _vectors_from_blobs(blobs: list[bytes], width: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, width // VECTOR_DTYPE.itemsize), VECTOR_DTYPE)
    return np.frombuffer(b"".join(blobs), VECTOR_DTYPE).reshape(len(blobs), width // VECTOR_DTYPE.itemsize)


def sound_vectors(rows: list[tuple[int, bytes]], dim: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, vectors, damaged ids) of (photo id, blob) rows of one model. Stored vectors are unit length, all
    of one size: a blob of another size, a non-finite value or a norm away from 1 is damage (a bad disk
    sector, a hand edit), and such a vector would rank first for every query or poison every score. `dim`:
    the model's width when known, else the most common one is taken for it."""
    lengths = Counter(len(blob) for _, blob in rows)
    if dim is not None:
        width = dim * VECTOR_DTYPE.itemsize
    else:
        width = max(lengths, key=lambda length: (lengths[length], length)) if lengths else 0
    if width == 0 or width % VECTOR_DTYPE.itemsize:
        width = 0
    sized = [(photo_id, blob) for photo_id, blob in rows if len(blob) == width and width]
    vectors = _vectors_from_blobs([blob for _, blob in sized], width)
    with np.errstate(all="ignore"):
        norms = np.linalg.norm(vectors.astype(np.float32), axis=1)
    sound = np.isfinite(norms) & (np.abs(norms - 1.0) <= VECTOR_NORM_TOLERANCE)
    ids = np.fromiter((photo_id for photo_id, _ in sized), np.int64, len(sized))
    damaged = sorted({photo_id for photo_id, blob in rows if len(blob) != width or not width} |
                     set(ids[~sound].tolist()))
    return ids[sound], vectors[sound], np.asarray(damaged, np.int64)


def insert_folder(conn: sqlite3.Connection, target: bytes, added_at: float) -> Folder:
    """The folder row for `target` inside the caller's transaction: the library folder that already covers it,
    or a new one that takes in the library folders inside it (their photos, tags and all)."""
    inner = []
    for folder_id, folder_path, folder_added in conn.execute("SELECT id, path, added_at FROM folders").fetchall():
        if is_within(target, folder_path):
            return Folder(folder_id, from_db_path(folder_path), folder_added)
        if is_within(folder_path, target):
            inner.append(folder_id)
    folder_id = conn.execute("INSERT INTO folders (path, added_at) VALUES (?, ?)", (target, added_at)).lastrowid
    for old_id in inner:
        conn.execute("UPDATE photos SET folder_id = ? WHERE folder_id = ?", (folder_id, old_id))
        conn.execute("UPDATE scan_errors SET folder_id = ? WHERE folder_id = ?", (folder_id, old_id))
        conn.execute("DELETE FROM folders WHERE id = ?", (old_id,))
    return Folder(folder_id, from_db_path(target), added_at)


class Library:
    def __init__(self, path: PathInput | None = None):
        self.path = Path(os.fsdecode(path)) if path is not None else paths.database_path()
        self._connections = ThreadConnections(self._connect)
        self._databases = threading.local()  # this thread's sqlite-utils wrapper of its connection
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn  # noqa: B018 - open now, so a bad database file fails here with a clear message

    # --- connections and transactions ---

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        except sqlite3.Error as exc:
            raise ClipdeskError(f"{self.path}: cannot open the library database ({exc})") from None
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            _switch_to_wal(conn)
            # In WAL mode NORMAL loses no committed transaction when the process dies, only on power loss.
            conn.execute("PRAGMA synchronous = NORMAL")
            migrate(conn, str(self.path))
        except BaseException as exc:
            conn.close()
            if is_disk_full(exc):
                raise disk_full_error(self.path.parent, "cannot open the library database") from None
            if isinstance(exc, sqlite3.DatabaseError):
                raise ClipdeskError(f"{self.path}: cannot open the library database ({exc}); "
                                    f"`clipdesk repair` backs it up and repairs it") from None
            raise
        _report_damage(self.path, conn)
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode: transactions are explicit)."""
        return self._connections.get()

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection wrapped by sqlite-utils (table introspection, `query` as dicts)."""
        conn = self.conn
        db = getattr(self._databases, "db", None)
        if db is None or db.conn is not conn:
            db = self._databases.db = sqlite_utils.Database(conn)
        return db

    def close(self) -> None:
        self._connections.close_all()
        self._databases = threading.local()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on this thread's connection: all of it commits, or none."""
        with write_transaction(self.conn) as conn:
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several SELECTs see one consistent state while writers go on."""
        conn = self.conn
        if conn.in_transaction:  # already inside one: that one is the snapshot
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    # --- folders ---

    def folders(self) -> list[Folder]:
        rows = self.conn.execute("SELECT id, path, added_at FROM folders ORDER BY path").fetchall()
        return [Folder(row[0], from_db_path(row[1]), row[2]) for row in rows]

    def folder_containing(self, path: PathInput) -> Folder | None:
        """The library folder that `path` is in (or is), if any."""
        target = to_db_path(path)
        for folder in self.folders():
            if is_within(target, os.fsencode(folder.path)):
                return folder
        return None

    def add_folder(self, path: PathInput) -> Folder:
        """Add a folder to the library. A folder inside a library folder is already covered (that one
        is returned); library folders inside the new one are merged into it, photos, tags and all."""
        target = to_db_path(path)
        if not os.path.isdir(target):
            raise ClipdeskError(f"{display_path(target)}: not a folder")
        with self.transaction() as conn:
            return insert_folder(conn, target, time.time())

    def folder_ids(self) -> set[int]:
        return {row[0] for row in self.conn.execute("SELECT id FROM folders")}

    def remove_folder(self, path: PathInput) -> int:
        """Remove a library folder and everything indexed in it (the photos themselves are untouched);
        returns the number of photos that left the library."""
        target = to_db_path(path)
        with self.transaction() as conn:
            row = conn.execute("SELECT id FROM folders WHERE path = ?", (target,)).fetchone()
            if row is None:
                known = ", ".join(display_path(folder.path) for folder in self.folders()) or "none"
                raise ClipdeskError(f"{display_path(target)}: not a library folder (library folders: {known})")
            removed = conn.execute("SELECT count(*) FROM photos WHERE folder_id = ?", row).fetchone()[0]
            change = history.Change(conn)
            change.watch_folder(row[0])
            conn.execute("DELETE FROM folders WHERE id = ?", row)
            change.save(f"Remove folder {display_path(target)}")
        return removed

    # --- undo and redo (history.py) ---

    def undo(self, folders_ok: bool = True) -> history.Step | None:
        """Undo the newest change to tags or folders not undone yet; None when there is none. `folders_ok`
        False: refuse to undo a folder's removal (while an index runs)."""
        with self.transaction() as conn:
            return history.undo(conn, folders_ok)

    def redo(self, folders_ok: bool = True) -> history.Step | None:
        """Redo the change undone last; None when there is none."""
        with self.transaction() as conn:
            return history.redo(conn, folders_ok)

    def next_steps(self) -> tuple[str | None, str | None]:
        """What undo and redo would do now (descriptions), or None each."""
        return history.next_steps(self.conn)

    # --- photos ---

    def photo(self, photo_id: int) -> Photo | None:
        row = self.conn.execute(_PHOTO_SELECT + " WHERE id = ?", (int(photo_id),)).fetchone()
        return _photo_from_row(row) if row else None

    def photo_id(self, path: PathInput) -> int | None:
        row = self.conn.execute("SELECT id FROM photos WHERE path = ?", (to_db_path(path),)).fetchone()
        return row[0] if row else None

    def photo_paths(self, ids: Iterable[int]) -> list[str | None]:
        """Paths of the given photo ids, in the same order; None for an id not in the library."""
        ids = [int(photo_id) for photo_id in ids]
        found: dict[int, str] = {}
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            part = ids[start:start + 500]
            marks = ",".join("?" * len(part))
            for photo_id, path in self.conn.execute(f"SELECT id, path FROM photos WHERE id IN ({marks})", part):
                found[photo_id] = from_db_path(path)
        return [found.get(photo_id) for photo_id in ids]

    def durations(self, ids: Iterable[int] | None = None) -> dict[int, float]:
        """Durations (seconds) of the videos among the given photo ids (None: of every video). A long list
        (a listing of the library) reads every video's once rather than its ids 500 at a time."""
        if ids is not None:
            ids = list(dict.fromkeys(int(photo_id) for photo_id in ids))
        if ids is None or len(ids) > 2000:
            every = dict(self.conn.execute("SELECT id, duration FROM photos WHERE duration IS NOT NULL").fetchall())
            return every if ids is None else {photo_id: every[photo_id] for photo_id in ids if photo_id in every}
        found: dict[int, float] = {}
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            part = ids[start:start + 500]
            found.update(self.conn.execute(f"SELECT id, duration FROM photos WHERE id IN ({','.join('?' * len(part))}) "
                                           "AND duration IS NOT NULL", part).fetchall())
        return found

    def embeddings(self, model: str, photo_ids: Iterable[int], dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, float32 vectors) of the given photos' sound `model` vectors; a photo without one is left out."""
        ids, rows = [int(photo_id) for photo_id in photo_ids], []
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            part = ids[start:start + 500]
            rows += self.conn.execute(f"SELECT photo_id, vector FROM embeddings WHERE model = ? AND photo_id IN "
                                      f"({','.join('?' * len(part))})", [model, *part]).fetchall()
        found, vectors, _ = sound_vectors(rows, dim)
        return found, vectors.astype(np.float32)

    def content_hashes(self, ids: Iterable[int]) -> dict[int, str]:
        """Content hashes of the given photo ids, in one query per 500 ids (thumbnails are keyed by
        them); an id not in the library, or never read (no hash), is left out."""
        ids = list(dict.fromkeys(int(photo_id) for photo_id in ids))
        found: dict[int, str] = {}
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            part = ids[start:start + 500]
            marks = ",".join("?" * len(part))
            found.update(self.conn.execute(
                f"SELECT id, hash FROM photos WHERE id IN ({marks}) AND hash IS NOT NULL", part).fetchall())
        return found

    def photo_listing(self, folder: PathInput | None = None, tag: str | None = None,
                      order: str = "newest", exclude: PathInput | None = None) -> tuple[np.ndarray, list[str]]:
        """(ids int64 (N,), paths) of the indexed photos (status ok), needing no model: all of them, those
        below `folder` (a library folder or any folder inside one), and/or those with the confirmed (user)
        tag `tag` (any case; suggestions do not count), none below `exclude`. `order`: "newest" or "oldest"
        taken first (photos without a date last), or "path". Unknown tags and folders simply list nothing."""
        if order not in _LISTING_ORDERS:
            raise ClipdeskError(f"unknown photo order {order!r} (choose from {', '.join(_LISTING_ORDERS)})")
        clauses, params = [in_library("p")], []
        for below, clause in ((folder, "p.path >= ? AND p.path < ?"), (exclude, "NOT (p.path >= ? AND p.path < ?)")):
            if below is not None:  # a range over the UNIQUE index on path
                clauses.append(clause)
                params += list(subtree_range(to_db_path(os.path.expanduser(os.fsdecode(below)))))
        if tag is not None:
            clauses.append("p.id IN (SELECT pt.photo_id FROM photo_tags AS pt JOIN tags AS t ON t.id = pt.tag_id "
                           "WHERE t.name = ? COLLATE NOCASE AND pt.source = 'user')")  # photo_tags_tag index
            params.append(tag)
        rows = self.conn.execute(f"SELECT p.id, p.path FROM photos AS p WHERE {' AND '.join(clauses)} "
                                 f"ORDER BY {_LISTING_ORDERS[order]}", params).fetchall()
        return (np.fromiter((row[0] for row in rows), np.int64, len(rows)),
                [from_db_path(row[1]) for row in rows])

    def photo_counts_by_folder(self) -> dict[int, int]:
        """Photos in the library (IN_LIBRARY) per folder id."""
        return dict(self.conn.execute(f"SELECT folder_id, count(*) FROM photos WHERE {IN_LIBRARY} GROUP BY folder_id"))

    def counts(self) -> dict:
        """"photos" (= "ok"): photos in the library (IN_LIBRARY), "videos" among them; "errors": files that
        could not be read; "problems": those plus folders that could not be scanned, as `errors()` lists them."""
        with self.snapshot() as conn:
            folders = conn.execute("SELECT count(*) FROM folders").fetchone()[0]
            statuses = dict(conn.execute("SELECT status, count(*) FROM photos GROUP BY status").fetchall())
            statuses[OK] = conn.execute(f"SELECT count(*) FROM photos WHERE {IN_LIBRARY}").fetchone()[0]
            videos = conn.execute(f"SELECT count(*) FROM photos WHERE {IN_LIBRARY} AND duration IS NOT NULL"
                                  ).fetchone()[0]
            scan_errors = conn.execute("SELECT count(*) FROM scan_errors").fetchone()[0]
            embeddings = dict(conn.execute("SELECT model, count(*) FROM embeddings GROUP BY model ORDER BY model"))
            tags = conn.execute("SELECT count(*) FROM tags").fetchone()[0]
        return {"folders": folders, "photos": statuses.get(OK, 0), "ok": statuses.get(OK, 0), "videos": videos,
                "errors": statuses.get(ERROR, 0), "problems": statuses.get(ERROR, 0) + scan_errors,
                "embeddings": embeddings, "tags": tags}

    def errors(self) -> list[ErrorRecord]:
        """Files that could not be indexed and folders that could not be scanned, by path."""
        with self.snapshot() as conn:
            files = conn.execute("SELECT id, path, error, indexed_at FROM photos WHERE status = 'error'").fetchall()
            folders = conn.execute("SELECT path, error, seen_at FROM scan_errors").fetchall()
        records = [ErrorRecord(from_db_path(path), error or "unknown error", "file", photo_id, at)
                   for photo_id, path, error, at in files]
        records += [ErrorRecord(from_db_path(path), error, "folder", None, at) for path, error, at in folders]
        return sorted(records, key=lambda record: os.fsencode(record.path))

    # --- embeddings ---

    def embedding_models(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT model, count(*) FROM embeddings GROUP BY model ORDER BY model"))

    def embedding_matrix(self, model: str) -> tuple[np.ndarray, np.ndarray]:
        """(photo ids int64 (N,), vectors float16 (N, D)) of every sound embedding of `model`, by photo id;
        damaged ones (damaged_embeddings) are left out."""
        ids, vectors, _ = self._read_embeddings(model)
        return ids, vectors

    def damaged_embeddings(self, model: str) -> np.ndarray:
        """Photo ids whose stored vector for `model` is damaged (wrong size, not finite, not unit length)."""
        return self._read_embeddings(model)[2]

    def _read_embeddings(self, model: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, vectors, damaged ids), read and checked in chunks: the blobs are never held whole beside
        the matrix. The first chunk's common width is the model's."""
        ids, vectors, damaged = [], [], [np.zeros(0, np.int64)]
        dim = None
        cursor = self.conn.execute("SELECT photo_id, vector FROM embeddings WHERE model = ? ORDER BY photo_id",
                                   (model,))
        while chunk := cursor.fetchmany(_FETCH_CHUNK):
            chunk_ids, chunk_vectors, chunk_damaged = sound_vectors(chunk, dim)
            damaged.append(chunk_damaged)
            if len(chunk_ids):
                dim = chunk_vectors.shape[1]
                ids.append(chunk_ids)
                vectors.append(chunk_vectors)
        if not ids:
            return np.zeros(0, np.int64), np.zeros((0, 0), VECTOR_DTYPE), np.concatenate(damaged)
        return np.concatenate(ids), np.concatenate(vectors), np.concatenate(damaged)

    def forget_damaged_embeddings(self, model: str) -> int:
        """Delete `model`'s damaged vectors, so that indexing makes them again; returns how many."""
        damaged = self.damaged_embeddings(model).tolist()
        with self.transaction() as conn:
            for start in range(0, len(damaged), 500):
                part = damaged[start:start + 500]
                conn.execute(f"DELETE FROM embeddings WHERE model = ? AND photo_id IN ({','.join('?' * len(part))})",
                             [model, *part])
        return len(damaged)

    def change_marker(self) -> int:
        return self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM embedding_changes").fetchone()[0]

    def embedding_changes(self, model: str, since: int, dim: int | None = None) -> EmbeddingChanges:
        with self.snapshot() as conn:
            marker = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM embedding_changes").fetchone()[0]
            rows = conn.execute(
                "SELECT c.photo_id, e.vector FROM (SELECT DISTINCT photo_id FROM embedding_changes "
                "WHERE seq > ? AND model = ?) AS c LEFT JOIN embeddings AS e ON e.photo_id = c.photo_id "
                "AND e.model = ? ORDER BY c.photo_id", (int(since), model, model)).fetchall()
        ids, vectors, damaged = sound_vectors([(photo_id, vector) for photo_id, vector in rows if vector is not None], dim)
        removed = [photo_id for photo_id, vector in rows if vector is None] + damaged.tolist()  # damaged: out of search
        return EmbeddingChanges(marker, ids, vectors, np.asarray(sorted(removed), np.int64))

    def compact_change_log(self) -> int:
        """Keep only the latest log entry of each (photo, model); returns the number of entries dropped."""
        with self.transaction() as conn:
            return conn.execute("DELETE FROM embedding_changes WHERE seq NOT IN "
                                "(SELECT MAX(seq) FROM embedding_changes GROUP BY photo_id, model)").rowcount

    # --- what the indexer reads ---

    def indexed_rows(self, folder: bytes, model: str) -> dict[bytes, IndexedRow]:
        """Photos below `folder` (stored path form), keyed by path, with whether `model` embedded them."""
        low, high = subtree_range(folder)
        rows = self.conn.execute(
            "SELECT p.id, p.path, p.size, p.mtime_ns, p.hash, p.status, p.error, e.photo_id IS NOT NULL "
            "FROM photos AS p LEFT JOIN embeddings AS e ON e.photo_id = p.id AND e.model = ? "
            "WHERE p.path >= ? AND p.path < ?", (model, low, high))
        return {row[1]: IndexedRow(*row[:7], embedded=bool(row[7])) for row in rows}

    def embedded_copy(self, content_hash: str, model: str) -> tuple[PhotoMetadata, bytes, int] | None:
        """Metadata and `model` vector of an indexed photo with these exact bytes, and its id, if there is one."""
        columns = ", ".join(f"p.{name}" for name in _METADATA_COLUMNS)
        row = self.conn.execute(
            f"SELECT {columns}, e.vector, p.id FROM photos AS p JOIN embeddings AS e ON e.photo_id = p.id "
            "AND e.model = ? WHERE p.hash = ? AND p.status = 'ok' LIMIT 1", (model, content_hash)).fetchone()
        return (PhotoMetadata(*row[:-2]), row[-2], row[-1]) if row else None

    # --- video frames (schema v6) ---

    def video_frames(self, model: str, photo_ids: Iterable[int] | None = None,
                     dim: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(video ids int64 (N,), times float32 (N,), vectors float16 (N, D)) of the sound sampled frames
        of `model`, ordered by video and time: all videos', or those of `photo_ids`."""
        query = "SELECT photo_id, time, vector FROM video_frames WHERE model = ?"
        if photo_ids is None:
            rows = self.conn.execute(query + " ORDER BY photo_id, time", (model,)).fetchall()
        else:
            ids, rows = [int(photo_id) for photo_id in photo_ids], []
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                rows += self.conn.execute(query + f" AND photo_id IN ({','.join('?' * len(part))}) "
                                          "ORDER BY photo_id, time", [model, *part]).fetchall()
        # sound_vectors checks (row number, blob) pairs: a damaged frame is left out, its video keeps the rest.
        numbers, vectors, _ = sound_vectors([(number, row[2]) for number, row in enumerate(rows)], dim)
        kept = [rows[number] for number in numbers.tolist()]
        return (np.fromiter((row[0] for row in kept), np.int64, len(kept)),
                np.fromiter((row[1] for row in kept), np.float32, len(kept)),
                vectors if len(kept) else np.zeros((0, dim or 0), VECTOR_DTYPE))

    # --- what the indexer writes (inside a transaction) ---

    def save_photo(self, folder_id: int, path: bytes, size: int | None, mtime_ns: int | None, content_hash: str | None,
                   metadata: PhotoMetadata | None, status: str, error: str | None = None) -> int:
        """Insert or overwrite the photo at `path` (its id, tags and embeddings stay); returns its id."""
        metadata = metadata or PhotoMetadata()
        columns = ("folder_id", "path", "size", "mtime_ns", "hash", *_METADATA_COLUMNS, "status", "error", "indexed_at",
                   "stem", "companion")
        values = (folder_id, path, size, mtime_ns, content_hash, *metadata.values(), status, error, time.time(),
                  *stack_fields(path))
        updates = ", ".join(f"{name} = excluded.{name}" for name in columns if name != "path")
        return self.conn.execute(
            f"INSERT INTO photos ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT (path) DO UPDATE SET {updates} RETURNING id", values).fetchone()[0]

    def refresh_photo(self, photo_id: int, folder_id: int, path: bytes, size: int, mtime_ns: int) -> None:
        """Same content found again (touched, moved or renamed): new place and stat, everything else kept."""
        self.conn.execute("UPDATE photos SET folder_id = ?, path = ?, size = ?, mtime_ns = ?, status = 'ok', "
                          "error = NULL, indexed_at = ?, stem = ?, companion = ? WHERE id = ?",
                          (folder_id, path, size, mtime_ns, time.time(), *stack_fields(path), photo_id))

    def mark_unreadable(self, photo_id: int, reason: str) -> None:
        """A known photo could not be read this time: record why, keep what was indexed, retry next run
        (mtime_ns NULL never matches the file's)."""
        self.conn.execute("UPDATE photos SET status = 'error', error = ?, mtime_ns = NULL, indexed_at = ? WHERE id = ?",
                          (reason, time.time(), photo_id))

    def forget_content(self, photo_id: int) -> None:
        """The file's bytes changed: its embeddings and suggested tags described the old ones (user tags stay)."""
        self.conn.execute("DELETE FROM video_frames WHERE photo_id = ?", (photo_id,))
        self.conn.execute("DELETE FROM embeddings WHERE photo_id = ?", (photo_id,))
        self.conn.execute("DELETE FROM photo_tags WHERE photo_id = ? AND source = 'suggested'", (photo_id,))

    def set_embedding(self, photo_id: int, model: str, vector: bytes) -> None:
        self.conn.execute("INSERT OR REPLACE INTO embeddings (photo_id, model, vector) VALUES (?, ?, ?)",
                          (photo_id, model, vector))

    def set_video_frames(self, photo_id: int, model: str, frames: Iterable[tuple[float, bytes]]) -> None:
        """A video's sampled frames (time, vector blob) for `model`, replacing any it had; written with the
        video's embedding (set_embedding), whose change log entry announces them."""
        self.conn.execute("DELETE FROM video_frames WHERE photo_id = ? AND model = ?", (photo_id, model))
        self.conn.executemany("INSERT INTO video_frames (photo_id, model, time, vector) VALUES (?, ?, ?, ?)",
                              [(photo_id, model, float(moment), blob) for moment, blob in frames])

    def copy_video_frames(self, source_id: int, photo_id: int, model: str) -> None:
        """A copy of a video (same bytes) gets the original's frames."""
        if source_id == photo_id:
            return
        self.set_video_frames(photo_id, model, self.conn.execute(
            "SELECT time, vector FROM video_frames WHERE photo_id = ? AND model = ?", (source_id, model)).fetchall())

    def delete_photos(self, ids: Iterable[int]) -> int:
        return self.conn.executemany("DELETE FROM photos WHERE id = ?", [(int(i),) for i in ids]).rowcount

    def replace_scan_errors(self, folder_id: int, scanned: bytes, problems: Iterable[tuple[bytes, str]]) -> None:
        """Folder problems found by a scan of `scanned` replace those previously recorded there."""
        low, high = subtree_range(scanned)
        self.conn.execute("DELETE FROM scan_errors WHERE path = ? OR (path >= ? AND path < ?)",
                          (scanned.rstrip(os.sep.encode()), low, high))
        now = time.time()
        self.conn.executemany("INSERT INTO scan_errors (folder_id, path, error, seen_at) VALUES (?, ?, ?, ?)",
                              [(folder_id, path, reason, now) for path, reason in problems])
