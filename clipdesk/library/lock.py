"""One indexing run per library at a time, across processes.

An OS file lock on `<database>.index-lock`: the OS releases it when the process dies, even by
`kill -9`, so a killed run never leaves a stale lock behind. Readers take no lock.
"""

from __future__ import annotations

import os
from pathlib import Path

from clipdesk.errors import ClipdeskError

if os.name == "nt":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True


class IndexLock:
    def __init__(self, database: Path):
        self.path = database.with_name(database.name + ".index-lock")
        self._fd: int | None = None

    def __enter__(self) -> "IndexLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            raise ClipdeskError(f"another indexing run is using the library {self.path.with_suffix('')}; "
                                "wait for it to finish (or cancel it) and run again")
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None
