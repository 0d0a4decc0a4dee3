"""`clipdesk repair`: check the library database, and repair it after a backup (library/repair.py)."""

from __future__ import annotations

from clipdesk.commands.common import log


def cmd_repair(args) -> int:
    from clipdesk import paths
    from clipdesk.library.lock import IndexLock
    from clipdesk.library.repair import check, repair
    from clipdesk.library.store import Library

    path = paths.database_path()
    if not path.is_file():
        print(f"no library database at {path}: nothing to check")
        return 0
    if args.check:
        with Library(path) as library:
            health = check(library.conn, None, full=True)
        print("the library database is sound" if health.ok else f"the library database is damaged: {health.line()}")
        return 0 if health.ok else 1
    with IndexLock(path):  # no indexer may write while the file is copied and replaced
        report = repair(path)
    for line in report.lines():
        print(line)
    if report.method.startswith("rows"):
        log("run `clipdesk index` to find lost photos again and re-make lost vectors")
    return 0


def register(commands) -> None:
    repair = commands.add_parser("repair", help="check the library database and repair it (a backup is kept)")
    repair.add_argument("--check", action="store_true", help="only check (the full integrity check); exit 1 if damaged")
    repair.set_defaults(handler=cmd_repair)
