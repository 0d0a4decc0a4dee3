"""A damaged library database: noticed when it opens, repaired on request, never thrown away.

Disks damage files. `quick_check` runs when a library opens, within a time budget (a very large library
is checked as far as the budget goes, and fully by `clipdesk repair --check`). `repair` first copies the
file (and its WAL) beside itself, then:
1. rebuilds every index (REINDEX): damage confined to indexes, the common case, costs nothing;
2. if the file is still damaged, copies every row that still reads into a fresh database with the same
   schema, range by range (a range that fails is split down to single rows), keeping ids so that tags,
   label sets and decisions stay attached to their photos; rows that no longer satisfy a reference are
   dropped; the fresh file replaces the damaged one.
Lost photo rows are found again by the next `clipdesk index`, lost vectors are re-made from the photos,
and thumbnails live in a cache of their own. The report says what was kept and what was lost.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from clipdesk.errors import ClipdeskError

CHECK_BUDGET_S = 0.3  # at every open; a larger library is checked as far as this goes
# Tables in an order that satisfies their references; the change log is not copied (it is derived, and a
# search index notices a fresh log and rebuilds itself).
TABLES = ("folders", "photos", "embeddings", "tags", "photo_tags", "tag_rejections", "label_sets", "scan_errors",
          "history", "history_tags", "history_folders", "history_photos")
_CHUNK = 512


@dataclass
class Health:
    ok: bool
    finished: bool  # False: the budget ran out before the check did (no damage seen so far)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The first problems SQLite names, on one line."""
        found = [line.strip() for problem in self.problems for line in problem.splitlines()
                 if line.strip() and not line.startswith("***")]
        more = f" and {len(found) - 2} more" if len(found) > 2 else ""
        return "; ".join(found[:2]) + more


def check(conn: sqlite3.Connection, budget_s: float | None = CHECK_BUDGET_S, full: bool = False) -> Health:
    """SQLite's quick_check (or the full integrity_check), stopped when the budget runs out."""
    deadline = None if budget_s is None else time.monotonic() + budget_s
    if deadline is not None:
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 20000)
    try:
        rows = conn.execute(f"PRAGMA {'integrity_check' if full else 'quick_check'}(20)").fetchall()
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc):
            return Health(True, False)
        return Health(False, True, [str(exc)])
    except sqlite3.DatabaseError as exc:
        return Health(False, True, [str(exc)])
    finally:
        if deadline is not None:
            conn.set_progress_handler(None, 0)
    problems = [str(row[0]) for row in rows if row and row[0] != "ok"]
    return Health(not problems, True, problems)


@dataclass
class RepairReport:
    backup: Path
    method: str  # "nothing to repair", "indexes rebuilt", "rows copied into a fresh database"
    kept: dict[str, int] = field(default_factory=dict)  # rows per table in the repaired file
    lost: dict[str, int] = field(default_factory=dict)  # rows that could not be read (where countable)
    user_tags: int = 0

    def lines(self) -> list[str]:
        lines = [f"backup of the damaged file: {self.backup}", f"repair: {self.method}"]
        if self.kept:
            lines.append("kept: " + ", ".join(f"{count:,} {table}" for table, count in self.kept.items()))
        lost = {table: count for table, count in self.lost.items() if count}
        lines.append("lost: " + (", ".join(f"{count:,} {table}" for table, count in lost.items()) if lost else "nothing"))
        lines.append(f"user tags on photos kept: {self.user_tags:,}")
        return lines


def _backup(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.damaged-{stamp}")
    shutil.copy2(path, backup)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            shutil.copy2(side, backup.with_name(backup.name + suffix))
    return backup


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.text_factory = lambda data: data.decode("utf-8", errors="replace")  # a damaged text still reads
    return conn


def repair(path: Path) -> RepairReport:
    """Back the library up beside itself, then repair it as the module says. Run with no other user."""
    from clipdesk.library.schema import migrate

    path = Path(path)
    if not path.is_file():
        raise ClipdeskError(f"{path}: no library database here")
    backup = _backup(path)
    conn = _connect(path)
    try:
        if check(conn, None, full=True).ok:
            return RepairReport(backup, "nothing to repair", _counts(conn), user_tags=_user_tags(conn))
        try:
            conn.execute("REINDEX")
        except sqlite3.DatabaseError:
            pass
        if check(conn, None, full=True).ok:
            return RepairReport(backup, "indexes rebuilt", _counts(conn), user_tags=_user_tags(conn))
        fresh_path = path.with_name(path.name + ".repairing")
        fresh_path.unlink(missing_ok=True)
        fresh = sqlite3.connect(fresh_path, isolation_level=None)
        try:
            migrate(fresh, str(fresh_path))
            report = RepairReport(backup, "rows copied into a fresh database")
            fresh.execute("BEGIN")
            for table in TABLES:
                report.kept[table], report.lost[table] = _copy_table(conn, fresh, table)
            _drop_orphans(fresh, report)
            fresh.execute("COMMIT")
            report.kept = _counts(fresh)
            report.user_tags = _user_tags(fresh)
        finally:
            fresh.close()
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    os.replace(fresh_path, path)
    return report


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _copy_table(old: sqlite3.Connection, new: sqlite3.Connection, table: str) -> tuple[int, int]:
    """Copy every row of `table` that reads, keeping rowids; returns (copied, rows known lost)."""
    columns = _columns(new, table)
    low, high = _rowid_bounds(old, table)
    if high is None:
        return 0, 0  # nothing of it can be read
    names = ", ".join(columns)
    insert = f"INSERT OR IGNORE INTO {table} (rowid, {names}) VALUES ({', '.join('?' * (len(columns) + 1))})"
    copied = lost = 0
    chunks = ((start, min(start + _CHUNK - 1, high)) for start in range(low, high + 1, _CHUNK))
    pending: list[tuple[int, int]] = []  # ranges split after a short read
    # Queries allowed: a bound that a bogus largest rowid cannot turn into hours of work.
    budget = min(2_000_000 + 8 * ((high - low) // _CHUNK + 1), 10_000_000)
    while budget > 0:
        budget -= 1
        span = pending.pop() if pending else next(chunks, None)
        if span is None:
            break
        first, last = span
        # A scan that meets a damaged page may fail, or may just stop early without a word: a range is
        # taken whole only when every rowid in it came back; otherwise it is split, down to single rows
        # looked up one by one (the lookup takes another path through the tree).
        try:
            rows = old.execute(f"SELECT rowid, {names} FROM {table} WHERE rowid BETWEEN ? AND ?",
                               (first, last)).fetchall()
            whole = len(rows) == last - first + 1 or first == last
        except sqlite3.DatabaseError:
            rows, whole = [], False
            if first == last:
                lost += 1  # a rowid whose row cannot be read (it may also never have existed)
                continue
        if not whole:
            middle = (first + last) // 2
            pending += [(first, middle), (middle + 1, last)]
            continue
        for row in rows:
            try:
                new.execute(insert, row)
                copied += 1
            except sqlite3.DatabaseError:
                lost += 1  # a row whose values break the schema's rules
    return copied, lost


def _rowid_bounds(conn: sqlite3.Connection, table: str) -> tuple[int, int | None]:
    """Where the table's rowids lie: from 1 (clipdesk's ids count up from there; what a damaged first page
    says its smallest is cannot be trusted) to the largest one that reads."""
    def one(query: str, *args):
        try:
            row = conn.execute(query, args).fetchone()
            return row[0] if row else None
        except sqlite3.DatabaseError:
            return None

    # AUTOINCREMENT tables record the largest id handed out (a page of its own); otherwise the largest rowid
    # is believed only if that row really reads (a damaged last page can name any number).
    sequence = one("SELECT seq FROM sqlite_sequence WHERE name = ?", table)
    if isinstance(sequence, int):
        return 1, sequence
    largest = one(f"SELECT max(rowid) FROM {table}")
    if isinstance(largest, int) and one(f"SELECT rowid FROM {table} WHERE rowid = ?", largest) == largest:
        return 1, largest
    last = 0  # walk the rowids in order as far as they read
    while True:
        try:
            rows = conn.execute(f"SELECT rowid FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT 4096",
                                (last,)).fetchall()
        except sqlite3.DatabaseError:
            break
        if not rows:
            break
        last = rows[-1][0]
    return 1, last or None


def _drop_orphans(conn: sqlite3.Connection, report: RepairReport) -> None:
    """Rows whose photo, folder or tag did not survive go too (the schema's references hold again)."""
    for table, rowid, _parent, _index in conn.execute("PRAGMA foreign_key_check").fetchall():
        conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (rowid,))
        report.lost[table] = report.lost.get(table, 0) + 1


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    counts = {}
    for table in TABLES:
        try:
            counts[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        except sqlite3.DatabaseError:
            counts[table] = 0
    return counts


def _user_tags(conn: sqlite3.Connection) -> int:
    try:
        return conn.execute("SELECT count(*) FROM photo_tags WHERE source = 'user'").fetchone()[0]
    except sqlite3.DatabaseError:
        return 0
