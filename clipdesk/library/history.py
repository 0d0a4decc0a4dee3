"""Undo and redo of the user's changes to tags and folders, kept in the library database (schema v3), so
that they outlive the app.

A change records, for every (photo, tag) it touched, the state before and after: the photo_tags row
(source and confidence, or none) and whether the tag was rejected on the photo. Undo puts the "before"
states back, redo the "after" states. Removing a folder also keeps the folder's path and its photos'
rows; undoing it brings them back with their ids, so their tags come back too, but not their embeddings
(a megabyte per thousand photos and per model that nobody may ask for again): the photos are indexed
again (only embedded: the files are read, not compared).

The history is one line: undo steps back through the changes, newest first; redo steps forward again
through the ones undone; a new change drops the ones undone. The newest KEEP changes are kept.

Writers: open a `Change` inside the write transaction, `watch` the pairs (or photos, or a tag) before
writing them, then `save` it with a description. A change that changed nothing is not kept.

A tag renamed in place (`Change.rename`) keeps its id; the change records the two names in a row of
history_tags for photo 0 (no photo has that id): `tag` and `before_source` hold the name before,
`after_source` the name after. Undo and redo rename the tag back and forth before they set any pair,
so the pairs, stored by name, find it under the name they were saved with.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from clipdesk.errors import ClipdeskError
from clipdesk.library.pathnames import is_within
from clipdesk.library.stacks import stack_fields

# Columns of a photo row that its path and folder give: not kept in history, made again on a restore.
_FROM_PATH = ("id", "folder_id", "path", "stem", "companion")

KEEP = 100
RENAME = 0  # the photo id of a history_tags row that records a tag's rename (see above)
_CHUNK = 500  # ids per IN (...) list: under SQLite's bound-parameter limit

# (source or None, confidence, rejected) of one (photo, tag); ABSENT: no row and not rejected.
State = tuple[str | None, float | None, bool]
ABSENT: State = (None, None, False)


@dataclass(frozen=True)
class Step:
    """What undo or redo did."""

    description: str
    undone: bool  # True: undone, False: redone
    folders: list[str] = field(default_factory=list)  # folders back in the library: their photos need indexing


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield [int(i) for i in ids[start:start + _CHUNK]]


def _states(conn: sqlite3.Connection, where: str, params: Sequence) -> dict[tuple[int, int], State]:
    """Current states of the pairs that have a row or a rejection, selected by `where` (on photo_id, tag_id)."""
    states: dict[tuple[int, int], State] = {}
    for photo_id, tag, source, confidence in conn.execute(
            f"SELECT photo_id, tag_id, source, confidence FROM photo_tags WHERE {where}", params):
        states[photo_id, tag] = (source, confidence, False)
    for photo_id, tag in conn.execute(f"SELECT photo_id, tag_id FROM tag_rejections WHERE {where}", params):
        source, confidence, _ = states.get((photo_id, tag), ABSENT)
        states[photo_id, tag] = (source, confidence, True)
    return states


class Change:
    """One undoable change being written, inside the caller's write transaction."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self._before: dict[tuple[int, int], State] = {}
        self._names: dict[int, str] = {}  # tag id -> name, read when first watched (a deleted tag has none after)
        self._folders: list[tuple[bytes, float]] = []
        self._photos: list[tuple[int, bytes, str]] = []
        self._renames: list[tuple[str, str]] = []  # (name before, name after)

    def watch(self, tag: int, photo_ids: Sequence[int]) -> None:
        """The pairs (photo, tag) about to be written; a pair watched twice keeps its first state."""
        for part in _chunks(photo_ids):
            fresh = [photo_id for photo_id in part if (photo_id, tag) not in self._before]
            if not fresh:
                continue
            states = _states(self.conn, f"tag_id = ? AND photo_id IN ({','.join('?' * len(fresh))})", [tag, *fresh])
            self._watched({(photo_id, tag): states.get((photo_id, tag), ABSENT) for photo_id in fresh})

    def watch_tag(self, tag: int) -> None:
        """Every pair of this tag (it is about to be deleted)."""
        self._watched(_states(self.conn, "tag_id = ?", (tag,)))

    def _watched(self, states: dict[tuple[int, int], State]) -> None:
        for pair, state in states.items():
            self._before.setdefault(pair, state)
            tag = pair[1]
            if tag not in self._names:
                self._names[tag] = self.conn.execute("SELECT name FROM tags WHERE id = ?", (tag,)).fetchone()[0]

    def rename(self, before: str, after: str) -> None:
        """A tag about to be renamed in place, keeping its id (a rename that merges it into another tag is
        recorded by watching both tags' pairs instead)."""
        if before != after:
            self._renames.append((before, after))

    def watch_folder(self, folder_id: int) -> None:
        """A library folder about to be removed: its path, its photos and every pair of theirs."""
        path, added_at = self.conn.execute("SELECT path, added_at FROM folders WHERE id = ?", (folder_id,)).fetchone()
        self._folders.append((path, added_at))
        columns = [row[1] for row in self.conn.execute("PRAGMA table_info(photos)")
                   if row[1] not in _FROM_PATH]
        rows = self.conn.execute(f"SELECT id, path, {', '.join(columns)} FROM photos WHERE folder_id = ?",
                                 (folder_id,)).fetchall()
        self._photos += [(row[0], row[1], json.dumps(dict(zip(columns, row[2:], strict=True)))) for row in rows]
        for part in _chunks([row[0] for row in rows]):
            self._watched(_states(self.conn, f"photo_id IN ({','.join('?' * len(part))})", part))

    def save(self, description: str) -> int | None:
        """Keep the change (dropping the changes undone before it); its id, or None when nothing changed."""
        conn = self.conn
        rows = []
        now = self._states_now()
        for (photo_id, tag), before in self._before.items():
            after = now.get((photo_id, tag), ABSENT)
            if after != before:
                rows.append((photo_id, before, after, self._names[tag]))
        rows += [(RENAME, (before, None, False), (after, None, False), before) for before, after in self._renames]
        if not rows and not self._folders:
            return None
        conn.execute("DELETE FROM history WHERE undone = 1")
        change_id = conn.execute("INSERT INTO history (description, created_at) VALUES (?, ?)",
                                 (description, time.time())).lastrowid
        conn.executemany(
            "INSERT INTO history_tags (change_id, photo_id, tag, before_source, before_confidence, before_rejected, "
            "after_source, after_confidence, after_rejected) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(change_id, photo_id, name, *before, *after) for photo_id, before, after, name in rows])
        conn.executemany("INSERT INTO history_folders (change_id, path, added_at) VALUES (?, ?, ?)",
                         [(change_id, path, added_at) for path, added_at in self._folders])
        conn.executemany("INSERT INTO history_photos (change_id, photo_id, path, fields_json) VALUES (?, ?, ?, ?)",
                         [(change_id, *photo) for photo in self._photos])
        conn.execute("DELETE FROM history WHERE id <= ?", (change_id - KEEP,))
        return change_id

    def _states_now(self) -> dict[tuple[int, int], State]:
        """The current states of the watched pairs, a query per tag and 500 photos (a label-set run watches
        a pair per photo of the library)."""
        photos: dict[int, list[int]] = {}
        for photo_id, tag in self._before:
            photos.setdefault(tag, []).append(photo_id)
        states: dict[tuple[int, int], State] = {}
        for tag, photo_ids in photos.items():
            for part in _chunks(photo_ids):
                states.update(_states(self.conn, f"tag_id = ? AND photo_id IN ({','.join('?' * len(part))})",
                                      [tag, *part]))
        return states


# --- reading ---

def next_steps(conn: sqlite3.Connection) -> tuple[str | None, str | None]:
    """(description of what undo would undo, of what redo would redo); None where there is nothing."""
    undo = conn.execute("SELECT description FROM history WHERE undone = 0 ORDER BY id DESC LIMIT 1").fetchone()
    redo = conn.execute("SELECT description FROM history WHERE undone = 1 ORDER BY id LIMIT 1").fetchone()
    return (undo[0] if undo else None), (redo[0] if redo else None)


# --- undoing and redoing (each inside the caller's write transaction) ---

def _check_folders(conn: sqlite3.Connection, change_id: int, folders_ok: bool) -> None:
    if not folders_ok and conn.execute("SELECT 1 FROM history_folders WHERE change_id = ?", (change_id,)).fetchone():
        raise ClipdeskError("a folder's removal cannot be undone or redone while indexing runs; wait for it to "
                            "finish or cancel it")


def undo(conn: sqlite3.Connection, folders_ok: bool = True) -> Step | None:
    """Undo the newest change not undone; `folders_ok` False refuses one that removed a folder (an index
    run is writing the library's folders)."""
    row = conn.execute("SELECT id, description FROM history WHERE undone = 0 ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return None
    change_id, description = row
    _check_folders(conn, change_id, folders_ok)
    folders, photo_map = _restore_folders(conn, change_id)
    _apply(conn, change_id, "before", photo_map)
    conn.execute("UPDATE history SET undone = 1 WHERE id = ?", (change_id,))
    return Step(description, True, folders)


def redo(conn: sqlite3.Connection, folders_ok: bool = True) -> Step | None:
    row = conn.execute("SELECT id, description FROM history WHERE undone = 1 ORDER BY id LIMIT 1").fetchone()
    if row is None:
        return None
    change_id, description = row
    _check_folders(conn, change_id, folders_ok)
    photo_map = _current_ids(conn, change_id)
    _apply(conn, change_id, "after", photo_map)
    for (path,) in conn.execute("SELECT path FROM history_folders WHERE change_id = ?", (change_id,)).fetchall():
        conn.execute("DELETE FROM folders WHERE path = ?", (path,))  # its photos, tags and embeddings go with it
    conn.execute("UPDATE history SET undone = 0 WHERE id = ?", (change_id,))
    return Step(description, False)


def _current_ids(conn: sqlite3.Connection, change_id: int) -> dict[int, int]:
    """A removed photo found again at its path (its folder added and indexed again meanwhile) has a new id."""
    found = {}
    for old_id, path in conn.execute("SELECT photo_id, path FROM history_photos WHERE change_id = ?", (change_id,)):
        row = conn.execute("SELECT id FROM photos WHERE path = ?", (path,)).fetchone()
        if row is not None:
            found[old_id] = row[0]
    return found


def _restore_folders(conn: sqlite3.Connection, change_id: int) -> tuple[list[str], dict[int, int]]:
    """Put removed folders and their photos back (ids kept unless the path is in the library again)."""
    from clipdesk.library.store import insert_folder  # store imports this module

    restored = []
    for path, added_at in conn.execute("SELECT path, added_at FROM history_folders WHERE change_id = ?",
                                       (change_id,)).fetchall():
        restored.append(insert_folder(conn, path, added_at).path)
    photo_map = _current_ids(conn, change_id)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(photos)")}
    for old_id, path, fields_json in conn.execute(
            "SELECT photo_id, path, fields_json FROM history_photos WHERE change_id = ?", (change_id,)).fetchall():
        if old_id in photo_map:
            continue
        folder_id = _folder_of(conn, path)
        if folder_id is None:
            continue
        fields = {name: value for name, value in json.loads(fields_json).items()
                  if name in columns and name not in _FROM_PATH}
        names = ["id", "folder_id", "path", "stem", "companion", *fields]
        conn.execute(f"INSERT INTO photos ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                     (old_id, folder_id, path, *stack_fields(path), *fields.values()))
        photo_map[old_id] = old_id
    return restored, photo_map


def _folder_of(conn: sqlite3.Connection, path: bytes) -> int | None:
    """The library folder holding `path` (library folders never nest)."""
    for folder_id, folder_path in conn.execute("SELECT id, path FROM folders"):
        if is_within(path, folder_path):
            return folder_id
    return None


def _apply(conn: sqlite3.Connection, change_id: int, side: str, photo_map: dict[int, int]) -> None:
    """Set every pair of the change to its `side` ("before" or "after") state; photos not in the library
    are skipped."""
    other = "after" if side == "before" else "before"
    for before, after in conn.execute(f"SELECT {other}_source, {side}_source FROM history_tags "
                                      "WHERE change_id = ? AND photo_id = ? ORDER BY rowid", (change_id, RENAME)):
        _rename(conn, before, after)
    rows = conn.execute(f"SELECT photo_id, tag, {side}_source, {side}_confidence, {side}_rejected "
                        "FROM history_tags WHERE change_id = ? AND photo_id != ?", (change_id, RENAME)).fetchall()
    present = _present(conn, [photo_map.get(row[0], row[0]) for row in rows])
    tag_ids: dict[str, int | None] = {}
    for photo_id, name, source, confidence, rejected in rows:
        photo_id = photo_map.get(photo_id, photo_id)
        if photo_id not in present:
            continue
        if name not in tag_ids:
            tag_ids[name] = _tag_id(conn, name, create=False)
        tag = tag_ids[name]
        if tag is None:
            if source is None and not rejected:
                continue  # nothing to remove from a tag that no longer exists
            tag = tag_ids[name] = _tag_id(conn, name, create=True)
        conn.execute("DELETE FROM photo_tags WHERE photo_id = ? AND tag_id = ?", (photo_id, tag))
        conn.execute("DELETE FROM tag_rejections WHERE photo_id = ? AND tag_id = ?", (photo_id, tag))
        if source is not None:
            conn.execute("INSERT INTO photo_tags (photo_id, tag_id, source, confidence) VALUES (?, ?, ?, ?)",
                         (photo_id, tag, source, confidence))
        if rejected:
            conn.execute("INSERT INTO tag_rejections (photo_id, tag_id) VALUES (?, ?)", (photo_id, tag))


def _rename(conn: sqlite3.Connection, current: str, name: str) -> None:
    """Rename the tag called `current` (any case) to `name`. Another tag holding `name` meanwhile (made by a
    later change, since undone) gives its rows to it and goes: tag names are unique."""
    tag = _tag_id(conn, current, create=False)
    if tag is None:
        return
    other = conn.execute("SELECT id FROM tags WHERE name = ? COLLATE NOCASE AND id != ?", (name, tag)).fetchone()
    if other is not None:
        conn.execute("INSERT OR IGNORE INTO photo_tags (photo_id, tag_id, source, confidence) "
                     "SELECT photo_id, ?, source, confidence FROM photo_tags WHERE tag_id = ?", (tag, other[0]))
        conn.execute("INSERT OR IGNORE INTO tag_rejections (photo_id, tag_id) "
                     "SELECT photo_id, ? FROM tag_rejections WHERE tag_id = ?", (tag, other[0]))
        conn.execute("DELETE FROM tags WHERE id = ?", (other[0],))
    conn.execute("UPDATE tags SET name = ? WHERE id = ?", (name, tag))


def _present(conn: sqlite3.Connection, photo_ids: list[int]) -> set[int]:
    ids = sorted(set(photo_ids))
    found: set[int] = set()
    for part in _chunks(ids):
        found.update(row[0] for row in conn.execute(
            f"SELECT id FROM photos WHERE id IN ({','.join('?' * len(part))})", part))
    return found


def _tag_id(conn: sqlite3.Connection, name: str, *, create: bool) -> int | None:
    row = conn.execute("SELECT id FROM tags WHERE name = ? COLLATE NOCASE ORDER BY id LIMIT 1", (name,)).fetchone()
    if row:
        return row[0]
    return conn.execute("INSERT INTO tags (name) VALUES (?)", (name,)).lastrowid if create else None
