"""What an indexing run has to do: the scan compared with what the library already holds.

A file is unchanged, and not even opened, when its size and mtime_ns match the stored ones and it is
embedded by the current model (or was refused and has not changed since), or when it cannot be
opened for the same reason as last time (a broken link, a pipe). Every other file is work.
Photos the scan did not find are missing: a new file with the same bytes claims one (a move or
rename); the rest leave the library once the run is complete.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from clipdesk.library.pathnames import is_within
from clipdesk.library.records import ERROR, OK
from clipdesk.library.scanner import FoundFile, ScanResult
from clipdesk.library.store import IndexedRow


@dataclass(frozen=True)
class WorkItem:
    found: FoundFile
    folder_id: int
    row: IndexedRow | None  # the library's photo at this path, if any


class MissingPhotos:
    """Photos not found where the library had them, claimable by content hash from worker threads."""

    def __init__(self) -> None:
        self._by_hash: dict[str, list[IndexedRow]] = {}
        self._all: dict[int, IndexedRow] = {}
        self._lock = threading.Lock()

    def add(self, row: IndexedRow) -> None:
        self._all[row.id] = row
        if row.hash:
            self._by_hash.setdefault(row.hash, []).append(row)

    def claim(self, content_hash: str) -> IndexedRow | None:
        """A missing photo with these bytes, handed out once (two new copies of a moved photo: one move)."""
        with self._lock:
            rows = self._by_hash.get(content_hash)
            if not rows:
                return None
            row = rows.pop()
            del self._all[row.id]
            return row

    def unclaimed_ids(self) -> list[int]:
        with self._lock:
            return sorted(self._all)

    def __len__(self) -> int:
        return len(self._all)


@dataclass
class Plan:
    work: list[WorkItem] = field(default_factory=list)
    unchanged: int = 0
    missing: MissingPhotos = field(default_factory=MissingPhotos)


def is_unchanged(found: FoundFile, row: IndexedRow | None) -> bool:
    if row is None:
        return False
    if found.error:  # a broken link or a pipe, recorded as such last time
        return row.status == ERROR and row.error == found.error
    if row.mtime_ns is None:
        return False
    same_file = (found.size, found.mtime_ns) == (row.size, row.mtime_ns)
    return same_file and ((row.status == OK and row.embedded) or row.status == ERROR)


def add_to_plan(plan: Plan, scan: ScanResult, rows: dict[bytes, IndexedRow], folder_id: int) -> None:
    """Fold one scanned folder into the plan. `rows` are the library's photos below that folder; those
    under folders the scan could not list are neither work nor missing: they stay as they are."""
    for found in scan.files:
        row = rows.pop(found.path, None)
        if is_unchanged(found, row):
            plan.unchanged += 1
        else:
            plan.work.append(WorkItem(found, folder_id, row))
    for path, row in rows.items():
        if not any(is_within(path, folder) for folder in scan.unlisted):
            plan.missing.add(row)
