"""Tags on photos: the user's own (confirmed) and the label sets' suggestions. Qt-free; the GUI calls it.

Rows live in the library's `photo_tags` (source 'user' or 'suggested', confidence for suggestions). A
user tag is never replaced by a suggestion: suggestions are only written where the photo has no row for
that tag, or over an older suggestion. Accepting a suggestion turns it into a user tag (its confidence
kept); rejecting one deletes it and remembers the rejection, so that running the label set again does
not suggest it again. Removing a user tag counts as rejecting it; adding it again forgets the rejection.

A manual tag wins over a suggestion: tagging a photo by hand drops its suggestions of the labels that share
a label set with that tag (they were the alternatives to it), and accepting a suggestion passes over a
photo that the user tagged with another label of the same set.

Every change is recorded for undo and redo (library/history.py).

Tag names compare without regard to case (as search's `tag:` filter does): adding "Beach" where "beach"
exists uses "beach".

Every function takes photo ids (the library's `photos.id`); `photo_ids_for_paths` turns files and
folders into ids. Writes happen in one transaction each.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from clipdesk.errors import ClipdeskError
from clipdesk.library.history import Change
from clipdesk.library.stacks import stack_ids
from clipdesk.library.pathnames import PathInput, display_path, from_db_path, subtree_range, to_db_path
from clipdesk.library.store import in_library
from clipdesk.tagging.names import clean_name, unique_names

USER, SUGGESTED = "user", "suggested"
_CHUNK = 500  # ids per IN (...) list: under SQLite's bound-parameter limit


@dataclass(frozen=True)
class TagCount:
    name: str
    photos: int  # photos with the tag confirmed (user)
    suggested: int  # photos where it is only suggested
    from_files: bool = False  # first made from a keyword read from a photo's file (keywords.py)

    def to_dict(self) -> dict:
        return {"name": self.name, "photos": self.photos, "suggested": self.suggested}


@dataclass(frozen=True)
class PhotoTag:
    name: str
    source: str  # USER or SUGGESTED
    confidence: float | None


@dataclass(frozen=True)
class Suggestion:
    photo_id: int
    path: str  # os.fsdecode form (library/pathnames.py)
    confidence: float | None


# --- names and ids ---

def tag_id(conn: sqlite3.Connection, name: str, *, create: bool = False, from_files: bool = False) -> int | None:
    """The id of the tag called `name` (any case); created when asked (inside the caller's transaction),
    marked as made from a file's keyword when `from_files`. An existing tag keeps its mark."""
    name = clean_name(name)
    row = conn.execute("SELECT id FROM tags WHERE name = ? COLLATE NOCASE ORDER BY id LIMIT 1", (name,)).fetchone()
    if row:
        return row[0]
    if not create:
        return None
    return conn.execute("INSERT INTO tags (name, from_files) VALUES (?, ?)", (name, int(from_files))).lastrowid


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    ids = [int(i) for i in ids]
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


def _check_photos(conn: sqlite3.Connection, photo_ids: Sequence[int]) -> list[int]:
    ids = list(dict.fromkeys(int(i) for i in photo_ids))
    found: set[int] = set()
    for part in _chunks(ids):
        found.update(row[0] for row in conn.execute(
            f"SELECT id FROM photos WHERE id IN ({','.join('?' * len(part))})", part))
    missing = [i for i in ids if i not in found]
    if missing:
        raise ClipdeskError(f"no photo with id {', '.join(map(str, missing[:5]))} in the library")
    return ids


def photo_ids_for_paths(library, paths: Iterable[PathInput]) -> list[int]:
    """Library photo ids of files, and of every photo below folders; one error names what is not there."""
    ids: list[int] = []
    unknown: list[str] = []
    for path in paths:
        stored = to_db_path(os.path.expanduser(os.fsdecode(path)))
        if os.path.isdir(stored):
            low, high = subtree_range(stored)
            ids += [row[0] for row in library.conn.execute(
                "SELECT id FROM photos WHERE path >= ? AND path < ? ORDER BY path", (low, high))]
            continue
        photo_id = library.photo_id(stored)
        if photo_id is None:
            unknown.append(display_path(stored))
        else:
            ids.append(photo_id)
    if unknown:
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise ClipdeskError(f"not in the library: {', '.join(unknown[:3])}{more}; index their folder first "
                            "(clipdesk index FOLDER)")
    return list(dict.fromkeys(ids))


# --- rejections (the library's tag_rejections table) ---

def _reject(conn: sqlite3.Connection, pairs: list[tuple[int, int]]) -> None:
    conn.executemany("INSERT OR IGNORE INTO tag_rejections (photo_id, tag_id) VALUES (?, ?)", pairs)


def is_rejected(conn: sqlite3.Connection, photo_id: int, tag: int) -> bool:
    return conn.execute(
        "SELECT 1 FROM tag_rejections WHERE photo_id = ? AND tag_id = ?", (photo_id, tag)).fetchone() is not None


def rejected_photo_ids(conn: sqlite3.Connection, tag: int) -> set[int]:
    return {row[0] for row in conn.execute("SELECT photo_id FROM tag_rejections WHERE tag_id = ?", (tag,))}


# --- label sets' alternatives ---

def rivals(conn: sqlite3.Connection, tag: int) -> list[int]:
    """Ids of the tags named by the labels that share a label set with `tag`: its alternatives."""
    name = conn.execute("SELECT name FROM tags WHERE id = ?", (tag,)).fetchone()[0].casefold()
    names: set[str] = set()
    for (labels_json,) in conn.execute("SELECT labels_json FROM label_sets"):
        try:
            labels = [str(label).casefold() for label in json.loads(labels_json)]
        except (json.JSONDecodeError, TypeError):
            continue  # a damaged set: label_sets.py reports it where it is used
        if name in labels:
            names.update(label for label in labels if label != name)
    found = [tag_id(conn, other) for other in sorted(names)]
    return [other for other in found if other is not None]


def _tagged_by_hand(conn: sqlite3.Connection, tags: list[int]) -> set[int]:
    if not tags:
        return set()
    return {row[0] for row in conn.execute(
        f"SELECT photo_id FROM photo_tags WHERE source = 'user' AND tag_id IN ({','.join('?' * len(tags))})", tags)}


def _confirm(conn: sqlite3.Connection, change: Change, tag: int, ids: list[int]) -> int:
    """The user's tag on these photos (a suggestion becomes theirs, a rejection is forgotten); the
    suggestions of its rivals on them go. Returns rows added or confirmed."""
    pairs = [(photo_id, tag) for photo_id in ids]
    change.watch(tag, ids)
    changed = conn.executemany(
        "INSERT INTO photo_tags (photo_id, tag_id, source, confidence) VALUES (?, ?, 'user', NULL) "
        "ON CONFLICT (photo_id, tag_id) DO UPDATE SET source = 'user' WHERE source <> 'user'", pairs).rowcount
    conn.executemany("DELETE FROM tag_rejections WHERE photo_id = ? AND tag_id = ?", pairs)
    for rival in rivals(conn, tag):
        change.watch(rival, ids)
        conn.executemany("DELETE FROM photo_tags WHERE photo_id = ? AND tag_id = ? AND source = 'suggested'",
                         [(photo_id, rival) for photo_id in ids])
    return changed


def _drop_suggestions(conn: sqlite3.Connection, change: Change, tag: int, ids: list[int]) -> int:
    """Suggestions of `tag` on these photos go and are remembered as rejected; user tags stay."""
    change.watch(tag, ids)
    kept = _tagged_by_hand(conn, [tag])
    pairs = [(photo_id, tag) for photo_id in ids if photo_id not in kept]
    removed = conn.executemany("DELETE FROM photo_tags WHERE photo_id = ? AND tag_id = ? AND source = 'suggested'",
                               pairs).rowcount
    _reject(conn, pairs)
    return removed


def _photos(count: int) -> str:
    return f"{count:,} photo{'s' if count != 1 else ''}"


# --- the user's tags ---

def add_tags(library, photo_ids: Sequence[int], names: Iterable[str]) -> int:
    """Confirm `names` on the photos and the other files of their stacks (RAW + JPEG: one shot, one set
    of tags, so that both files' XMP sidecars get them); returns rows added or confirmed."""
    names = unique_names(names)
    changed = 0
    with library.transaction() as conn:
        ids = _check_photos(conn, stack_ids(conn, photo_ids))
        change = Change(conn)
        for name in names:
            changed += _confirm(conn, change, tag_id(conn, name, create=True), ids)
        change.save(f"Tag {_photos(len(ids))} “{', '.join(names)}”")
    return changed


def remove_tags(library, photo_ids: Sequence[int], names: Iterable[str]) -> int:
    """Take `names` off the photos and their stacks, confirmed or suggested; remembered as rejections.
    Returns rows removed."""
    names = unique_names(names)
    removed = 0
    with library.transaction() as conn:
        ids = _check_photos(conn, stack_ids(conn, photo_ids))
        change = Change(conn)
        for name in names:
            tag = tag_id(conn, name)
            if tag is None:
                raise ClipdeskError(f"no tag {name!r} in the library; `clipdesk tag list` shows the tags")
            pairs = [(photo_id, tag) for photo_id in ids]
            change.watch(tag, ids)
            removed += conn.executemany("DELETE FROM photo_tags WHERE photo_id = ? AND tag_id = ?", pairs).rowcount
            _reject(conn, pairs)
        change.save(f"Remove “{', '.join(names)}” from {_photos(removed)}")
    return removed


@dataclass(frozen=True)
class Reviewed:
    changed: int  # suggestions accepted or rejected
    passed_over: int  # photos not tagged: the user had tagged them with another label of the set


def review(library, chosen: dict[str, Sequence[int]], accept: bool) -> Reviewed:
    """Accept (they become the user's tags) or reject (not suggested again) suggestions, several labels at
    once, as one change. Accepting confirms the tag even where the suggestion went meanwhile, but never on
    a photo tagged by hand with one of the label's rivals: the user's tag wins."""
    changed = passed_over = 0
    with library.transaction() as conn:
        change = Change(conn)
        for name, photo_ids in chosen.items():
            ids = _check_photos(conn, photo_ids)
            if accept:
                tag = tag_id(conn, name, create=True)
                theirs = _tagged_by_hand(conn, rivals(conn, tag))
                wanted = [photo_id for photo_id in ids if photo_id not in theirs]
                passed_over += len(ids) - len(wanted)
                changed += _confirm(conn, change, tag, wanted)
            elif (tag := tag_id(conn, name)) is not None:
                changed += _drop_suggestions(conn, change, tag, ids)
        label = f"“{next(iter(chosen))}”" if len(chosen) == 1 else "suggestions"
        change.save(f"{'Accept' if accept else 'Reject'} {label} on {_photos(changed)}")
    return Reviewed(changed, passed_over)


def accept_suggestions(library, photo_ids: Sequence[int], name: str) -> int:
    """Suggestions of `name` on these photos become user tags; returns how many there were. A photo the
    user tagged with a rival label keeps its suggestion."""
    with library.transaction() as conn:
        tag = tag_id(conn, name)
        if tag is None:
            return 0
        theirs = _tagged_by_hand(conn, rivals(conn, tag))
        ids = [photo_id for photo_id in _check_photos(conn, photo_ids) if photo_id not in theirs]
        change = Change(conn)
        change.watch(tag, ids)
        accepted = conn.executemany("UPDATE photo_tags SET source = 'user' WHERE photo_id = ? AND tag_id = ? "
                                    "AND source = 'suggested'", [(photo_id, tag) for photo_id in ids]).rowcount
        change.save(f"Accept “{clean_name(name)}” on {_photos(accepted)}")
        return accepted


def reject_suggestions(library, photo_ids: Sequence[int], name: str) -> int:
    """Suggestions of `name` on these photos are dropped and not made again; user tags stay."""
    with library.transaction() as conn:
        tag = tag_id(conn, name)
        if tag is None:
            return 0
        change = Change(conn)
        removed = _drop_suggestions(conn, change, tag, _check_photos(conn, photo_ids))
        change.save(f"Reject “{clean_name(name)}” on {_photos(removed)}")
    return removed


def rename_tag(library, old: str, new: str) -> None:
    """Rename a tag; into an existing tag's name, the two merge (a confirmed row wins over a suggestion).
    One step to undo: undo gives back the old name (and, after a merge, both tags as they were)."""
    new = clean_name(new)
    with library.transaction() as conn:
        source = tag_id(conn, old)
        if source is None:
            raise ClipdeskError(f"no tag {clean_name(old)!r} in the library")
        name = conn.execute("SELECT name FROM tags WHERE id = ?", (source,)).fetchone()[0]
        target = tag_id(conn, new)
        change = Change(conn)
        if target is None or target == source:
            change.rename(name, new)
            conn.execute("UPDATE tags SET name = ? WHERE id = ?", (new, source))
            change.save(f"Rename tag “{name}” to “{new}”")
            return
        change.watch_tag(source)
        change.watch_tag(target)
        change.watch(target, [row[0] for row in conn.execute(  # the photos the merge gives the target tag
            "SELECT photo_id FROM photo_tags WHERE tag_id = ? UNION SELECT photo_id FROM tag_rejections "
            "WHERE tag_id = ?", (source, source))])
        into = conn.execute("SELECT name FROM tags WHERE id = ?", (target,)).fetchone()[0]
        conn.execute(
            "INSERT INTO photo_tags (photo_id, tag_id, source, confidence) "
            "SELECT photo_id, ?, source, confidence FROM photo_tags WHERE tag_id = ? "
            "ON CONFLICT (photo_id, tag_id) DO UPDATE SET source = 'user' WHERE excluded.source = 'user'",
            (target, source))
        conn.execute("INSERT OR IGNORE INTO tag_rejections (photo_id, tag_id) "
                     "SELECT photo_id, ? FROM tag_rejections WHERE tag_id = ?", (target, source))
        conn.execute("DELETE FROM tags WHERE id = ?", (source,))
        change.save(f"Merge tag “{name}” into “{into}”")


def delete_tag(library, name: str) -> int:
    """Remove a tag from every photo (and its rejections); returns the photos it was on."""
    with library.transaction() as conn:
        tag = tag_id(conn, name)
        if tag is None:
            raise ClipdeskError(f"no tag {clean_name(name)!r} in the library")
        count = conn.execute("SELECT count(*) FROM photo_tags WHERE tag_id = ?", (tag,)).fetchone()[0]
        change = Change(conn)
        change.watch_tag(tag)
        conn.execute("DELETE FROM tags WHERE id = ?", (tag,))
        change.save(f"Delete tag “{clean_name(name)}” ({_photos(count)})")
    return count


# --- reading ---

def tag_counts(library) -> list[TagCount]:
    """Every tag in use, by name: photos in the library (store.in_library: a stack once) where it is
    confirmed, and where it is only suggested."""
    shown = in_library("p")
    rows = library.conn.execute(
        f"SELECT t.name, sum(pt.source = 'user' AND {shown}), sum(pt.source = 'suggested' AND {shown}), t.from_files "
        "FROM tags AS t JOIN photo_tags AS pt ON pt.tag_id = t.id JOIN photos AS p ON p.id = pt.photo_id "
        "GROUP BY t.id ORDER BY t.name COLLATE NOCASE, t.name")
    return [TagCount(name, user, suggested, bool(from_files)) for name, user, suggested, from_files in rows]


def tags_of_photos(library, photo_ids: Sequence[int]) -> dict[int, list[PhotoTag]]:
    """Each photo's tags, confirmed first, then suggestions by confidence."""
    result: dict[int, list[PhotoTag]] = {int(i): [] for i in photo_ids}
    for part in _chunks(list(result)):
        rows = library.conn.execute(
            "SELECT pt.photo_id, t.name, pt.source, pt.confidence FROM photo_tags AS pt JOIN tags AS t "
            f"ON t.id = pt.tag_id WHERE pt.photo_id IN ({','.join('?' * len(part))}) "
            "ORDER BY pt.source = 'suggested', pt.confidence DESC, t.name COLLATE NOCASE", part)
        for photo_id, name, source, confidence in rows:
            result[photo_id].append(PhotoTag(name, source, confidence))
    return result


def photos_with_tag(library, name: str, *, include_suggested: bool = False) -> list[int]:
    tag = tag_id(library.conn, name)
    if tag is None:
        return []
    sources = (USER, SUGGESTED) if include_suggested else (USER,)
    rows = library.conn.execute(
        f"SELECT photo_id FROM photo_tags WHERE tag_id = ? AND source IN ({','.join('?' * len(sources))}) "
        "ORDER BY photo_id", (tag, *sources))
    return [row[0] for row in rows]


def suggestions(library, labels: Iterable[str] | None = None, *, min_confidence: float = 0.0
                ) -> dict[str, list[Suggestion]]:
    """Open suggestions grouped by tag, most confident first; `labels` limits them to those tags
    (a label set's labels)."""
    query = ("SELECT t.name, pt.photo_id, p.path, pt.confidence FROM photo_tags AS pt "
             "JOIN tags AS t ON t.id = pt.tag_id JOIN photos AS p ON p.id = pt.photo_id "
             "WHERE pt.source = 'suggested' AND coalesce(pt.confidence, 0) >= ?")
    params: list = [float(min_confidence)]
    if labels is not None:
        wanted = [clean_name(label, "label") for label in labels]
        if not wanted:
            return {}
        query += f" AND t.name COLLATE NOCASE IN ({','.join('?' * len(wanted))})"
        params += wanted
    grouped: dict[str, list[Suggestion]] = {}
    for name, photo_id, path, confidence in library.conn.execute(
            query + " ORDER BY t.name COLLATE NOCASE, pt.confidence DESC, pt.photo_id", params):
        grouped.setdefault(name, []).append(Suggestion(photo_id, from_db_path(path), confidence))
    return grouped
