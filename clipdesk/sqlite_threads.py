"""SQLite connections one per thread, and write transactions: shared by the library and the thumbnail cache.

A sqlite3 connection must not run statements from two threads at once, and indexing workers, the GUI's
loaders and the UI thread all read while a batch is written (WAL); so each thread gets its own.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class ThreadConnections:
    """This thread's connection, opened by `connect` on its first use."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]):
        self._connect = connect
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[tuple[threading.Thread, sqlite3.Connection]] = []

    def get(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                # Worker threads come and go (one pool per indexing run): close what the finished ones left.
                for thread, old in self._open:
                    if not thread.is_alive():
                        old.close()
                self._open = [(t, c) for t, c in self._open if t.is_alive()]
                self._open.append((threading.current_thread(), conn))
        return conn

    def __len__(self) -> int:
        """Connections open (finished threads' are closed when another thread opens one)."""
        with self._lock:
            return len(self._open)

    def close_all(self) -> None:
        with self._lock:
            for _, conn in self._open:
                conn.close()
            self._open.clear()
        self._local = threading.local()


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on an autocommit-mode connection: all of it commits, or none."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back what is still open. After a failed COMMIT (a full disk) SQLite may have rolled back already,
    and a second ROLLBACK would replace the real error with 'no transaction is active'."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
