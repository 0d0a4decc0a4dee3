"""Stacks: files of one shot that a camera or phone writes side by side, shown and tagged as one item.

A rendered still (JPEG, HEIC, ...) and, with the same stem in the same folder, a camera RAW
(IMG_0042.CR2 + IMG_0042.JPG) or a short video (a Live Photo: IMG_0042.HEIC + IMG_0042.MOV) form a
stack. No stack is stored: it is found from the paths, so renaming or deleting one file breaks it up
with no bookkeeping. Each photo row keeps only what its own path says (`stack_fields`: its path without
the extension, and whether it is a RAW or video), so that SQL can leave a stack's companions out of
counts (store.in_library). Search shows a stack once, by its still (the camera's own rendering, and a file
every viewer opens), and the photo view lists the members.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from clipdesk.library.pathnames import from_db_path, to_db_path
from clipdesk.runtime.raw import is_raw
from clipdesk.runtime.video_frames import is_video


def _split(path: bytes) -> tuple[bytes, bytes]:
    folder, name = os.path.split(path)
    return folder, os.path.splitext(name)[0]


def _is_companion(path: bytes) -> bool:
    """A file that goes with a still: its RAW, or its Live Photo video."""
    return is_raw(path) or is_video(path)


def stack_fields(path: bytes) -> tuple[bytes, int]:
    """(`photos.stem`, `photos.companion`) of a stored path: the path without its extension, and 1 for a
    RAW or a video (a file that, beside a still of the same stem, is that still's companion)."""
    return os.path.splitext(path)[0], int(_is_companion(path))


def _is_stack(paths: Sequence[bytes]) -> bool:
    companions = sum(map(_is_companion, paths))
    return len(paths) > 1 and 0 < companions < len(paths)


def _rank(path: bytes) -> tuple[bool, bool, bytes]:
    return _is_companion(path), is_video(path), path  # the still first: it represents the stack


def stack_paths(conn, path) -> list[str]:
    """The library paths of the stack `path` belongs to, its representative first; [] when it is in none."""
    target = to_db_path(path)
    folder, stem = _split(target)
    prefix = os.path.join(folder, stem) + b"."
    rows = conn.execute("SELECT path FROM photos WHERE path >= ? AND path < ?",
                        (prefix, prefix[:-1] + b"/")).fetchall()
    members = sorted((row[0] for row in rows if _split(row[0]) == (folder, stem)), key=_rank)
    return [from_db_path(member) for member in members] if _is_stack(members) else []


def stack_ids(conn, photo_ids: Iterable[int]) -> list[int]:
    """`photo_ids` with the other members of their stacks added (each id once, the given ones first)."""
    ids = list(dict.fromkeys(int(photo_id) for photo_id in photo_ids))
    extra = []
    for photo_id in ids:
        row = conn.execute("SELECT path FROM photos WHERE id = ?", (photo_id,)).fetchone()
        for member in stack_paths(conn, row[0]) if row else []:
            found = conn.execute("SELECT id FROM photos WHERE path = ?", (to_db_path(member),)).fetchone()
            extra.append(found[0])
    return list(dict.fromkeys(ids + extra))


def collapse(conn, paths: Sequence[str]) -> list[tuple[int, str, list[str]]]:
    """Ranked result paths with each stack once: (rank of its best member, representative path, all
    member paths) for stacks, (rank, path, []) for single files."""
    seen: set[tuple[bytes, bytes]] = set()
    kept = []
    for rank, path in enumerate(paths):
        key = _split(to_db_path(path))
        if key in seen:
            continue
        members = stack_paths(conn, path)
        if members:
            seen.add(key)
            kept.append((rank, members[0], members))
        else:
            kept.append((rank, path, []))
    return kept


def companions(conn, photo_ids: Iterable[int]) -> set[int]:
    """The ids among `photo_ids` that are a stack's RAW or video beside its still: the still stands for
    the stack, so these are left out where each shot should count once (near-duplicates)."""
    ids, found = [int(photo_id) for photo_id in photo_ids], set()
    for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
        part = ids[start:start + 500]
        for photo_id, path in conn.execute(f"SELECT id, path FROM photos WHERE id IN ({','.join('?' * len(part))})",
                                           part).fetchall():
            if _is_companion(path):
                members = stack_paths(conn, path)
                if members and to_db_path(members[0]) != path:
                    found.add(photo_id)
    return found
