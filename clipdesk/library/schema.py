"""The library database's schema and its migrations: the one home of every table definition.

`PRAGMA user_version` holds the number of migrations applied. `MIGRATIONS[i]` takes a database at
version i to version i + 1; each runs in its own transaction together with the version bump, so a
crash leaves the database at the old or the new version, never between. To change the schema, append
a function: never edit one that has shipped.

Conventions the other modules rely on:
- Paths (`folders.path`, `photos.path`, `scan_errors.path`) are BLOBs of the OS's bytes (see pathnames.py).
- Times (`added_at`, `indexed_at`, `created_at`, `seen_at`) are Unix seconds (REAL); `photos.taken_at` is
  the camera's local time as ISO 8601 text, `YYYY-MM-DDTHH:MM:SS` plus `+HH:MM` when the camera recorded it.
- `photos.width`/`height` are the full image's size as displayed (EXIF orientation applied); `photos.duration`
  (seconds) is set for videos only.
- `embeddings.vector` is an L2-normalised float16 little-endian vector; its length / 2 is the dimension.
  `embeddings.model` is `store.embedding_model_key(package)`: vectors of different models never mix.
- Every insert, update or delete of an embedding (cascades included) appends its (photo_id, model) to
  `embedding_changes` through triggers, so an in-memory index can catch up from a `seq` marker whoever
  the writer is.
- `photos.id` uses AUTOINCREMENT: an id is never reused, so ids held by a GUI or a search index stay
  unambiguous after deletions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from clipdesk.errors import ClipdeskError
from clipdesk.sqlite_threads import rollback


def _v1_initial(conn: sqlite3.Connection) -> None:
    statements = [
        """CREATE TABLE folders (
            id INTEGER PRIMARY KEY,
            path BLOB NOT NULL UNIQUE,
            added_at REAL NOT NULL
        )""",
        """CREATE TABLE photos (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            path BLOB NOT NULL UNIQUE,
            size INTEGER,
            mtime_ns INTEGER,
            hash TEXT,
            width INTEGER,
            height INTEGER,
            taken_at TEXT,
            camera_make TEXT,
            camera_model TEXT,
            orientation INTEGER,
            gps_lat REAL,
            gps_lon REAL,
            format TEXT,
            status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
            error TEXT,
            indexed_at REAL NOT NULL
        )""",
        "CREATE INDEX photos_folder ON photos(folder_id)",
        "CREATE INDEX photos_hash ON photos(hash)",
        "CREATE INDEX photos_taken_at ON photos(taken_at)",
        "CREATE INDEX photos_errors ON photos(status) WHERE status = 'error'",
        """CREATE TABLE embeddings (
            photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (photo_id, model)
        )""",
        """CREATE TABLE embedding_changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            photo_id INTEGER NOT NULL,
            model TEXT NOT NULL
        )""",
        """CREATE TRIGGER embeddings_inserted AFTER INSERT ON embeddings BEGIN
            INSERT INTO embedding_changes (photo_id, model) VALUES (new.photo_id, new.model);
        END""",
        """CREATE TRIGGER embeddings_updated AFTER UPDATE ON embeddings BEGIN
            INSERT INTO embedding_changes (photo_id, model) VALUES (new.photo_id, new.model);
        END""",
        """CREATE TRIGGER embeddings_deleted AFTER DELETE ON embeddings BEGIN
            INSERT INTO embedding_changes (photo_id, model) VALUES (old.photo_id, old.model);
        END""",
        """CREATE TABLE tags (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE
        )""",
        """CREATE TABLE photo_tags (
            photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
            tag_id INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
            source TEXT NOT NULL CHECK (source IN ('user', 'suggested')),
            confidence REAL,
            PRIMARY KEY (photo_id, tag_id)
        )""",
        "CREATE INDEX photo_tags_tag ON photo_tags(tag_id)",
        """CREATE TABLE label_sets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            labels_json TEXT NOT NULL,
            templates_json TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
        # Problems with folders rather than files (unlistable, symbolic link loops), replaced on each scan.
        """CREATE TABLE scan_errors (
            id INTEGER PRIMARY KEY,
            folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            path BLOB NOT NULL,
            error TEXT NOT NULL,
            seen_at REAL NOT NULL
        )""",
        "CREATE INDEX scan_errors_path ON scan_errors(path)",
    ]
    for statement in statements:
        conn.execute(statement)


def _v2_tag_rejections(conn: sqlite3.Connection) -> None:
    # Tags the user rejected or removed on a photo: label-set runs and keyword imports do not bring them
    # back. IF NOT EXISTS because tagging created this table on first use before it had a migration.
    conn.execute("""CREATE TABLE IF NOT EXISTS tag_rejections (
        photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        tag_id INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
        PRIMARY KEY (photo_id, tag_id))""")


def _v3_history(conn: sqlite3.Connection) -> None:
    # Undo and redo of changes to tags and folders (history.py). A change keeps, for each (photo, tag) it
    # touched, the state before and after; tags by name, because deleting a tag deletes its id. No foreign
    # key to photos: a removed folder's photos are gone until its removal is undone, and come back with
    # their ids. A removed folder keeps its path and its photos' rows, not their embeddings.
    statements = [
        """CREATE TABLE history (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            description TEXT NOT NULL,
            created_at REAL NOT NULL,
            undone INTEGER NOT NULL DEFAULT 0 CHECK (undone IN (0, 1))
        )""",
        """CREATE TABLE history_tags (
            change_id INTEGER NOT NULL REFERENCES history(id) ON DELETE CASCADE,
            photo_id INTEGER NOT NULL,
            tag TEXT NOT NULL,
            before_source TEXT,
            before_confidence REAL,
            before_rejected INTEGER NOT NULL,
            after_source TEXT,
            after_confidence REAL,
            after_rejected INTEGER NOT NULL
        )""",
        "CREATE INDEX history_tags_change ON history_tags(change_id)",
        """CREATE TABLE history_folders (
            change_id INTEGER NOT NULL REFERENCES history(id) ON DELETE CASCADE,
            path BLOB NOT NULL,
            added_at REAL NOT NULL
        )""",
        """CREATE TABLE history_photos (
            change_id INTEGER NOT NULL REFERENCES history(id) ON DELETE CASCADE,
            photo_id INTEGER NOT NULL,
            path BLOB NOT NULL,
            fields_json TEXT NOT NULL
        )""",
        "CREATE INDEX history_photos_change ON history_photos(change_id)",
    ]
    for statement in statements:
        conn.execute(statement)


def _v4_label_set_run_model(conn: sqlite3.Connection) -> None:
    # The model (store.embedding_model_key) that made a label set's stored suggestions: after a model switch
    # they are the old model's, and the tagging panel says so instead of listing them as current.
    conn.execute("ALTER TABLE label_sets ADD COLUMN run_model TEXT")


def _v5_tag_from_files(conn: sqlite3.Connection) -> None:
    # Tags first made from keywords read from the photos' files (XMP, IPTC): the sidebar lists them apart
    # from the tags the user made. Tags made before this version cannot be told apart and stay 0.
    conn.execute("ALTER TABLE tags ADD COLUMN from_files INTEGER NOT NULL DEFAULT 0")


def _v6_videos(conn: sqlite3.Connection) -> None:
    # Videos are rows of `photos` (one item each in every count, tag and listing) with a duration. Their
    # `embeddings` vector is the normalised mean of their sampled frames' (for tagging, duplicates and "like
    # this"); each frame's vector, at its moment, is kept here for search, which scores a video by its best
    # frame. Frames are written in the transaction that writes the video's embedding, so the embedding's
    # change log entry also announces its frames.
    conn.execute("ALTER TABLE photos ADD COLUMN duration REAL")
    conn.execute("""CREATE TABLE video_frames (
        photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        time REAL NOT NULL,
        vector BLOB NOT NULL,
        PRIMARY KEY (photo_id, model, time))""")


def _v7_stack_fields(conn: sqlite3.Connection) -> None:
    # What each row's own path says about stacks (stacks.stack_fields): counts leave out a RAW or video
    # that sits beside a still of the same stem, in SQL (store.in_library).
    from clipdesk.library.stacks import stack_fields

    conn.execute("ALTER TABLE photos ADD COLUMN stem BLOB")
    conn.execute("ALTER TABLE photos ADD COLUMN companion INTEGER NOT NULL DEFAULT 0")
    rows = conn.execute("SELECT id, path FROM photos").fetchall()
    conn.executemany("UPDATE photos SET stem = ?, companion = ? WHERE id = ?",
                     [(*stack_fields(path), photo_id) for photo_id, path in rows])
    conn.execute("CREATE INDEX photos_stem ON photos(stem)")


Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = [_v1_initial, _v2_tag_rejections, _v3_history, _v4_label_set_run_model,
                                _v5_tag_from_files, _v6_videos, _v7_stack_fields]


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, source: str = "library database") -> int:
    """Bring the database up to date; returns its version. `conn` must be in autocommit mode
    (isolation_level=None) so that each migration's BEGIN/COMMIT is this function's own."""
    target = len(MIGRATIONS)
    if schema_version(conn) == target:  # the common case: no write lock taken
        return target
    while True:
        # BEGIN IMMEDIATE, then re-read: two processes opening an old database at once migrate it once.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(conn)
            if version > target:
                raise ClipdeskError(
                    f"{source} has schema version {version}, newer than this clipdesk understands ({target}); "
                    "update clipdesk"
                )
            if version == target:
                conn.execute("COMMIT")
                return version
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")  # PRAGMA takes no parameters; an int
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
