"""Errors meant for people: each carries one line that says what failed and what to do."""


class ClipdeskError(Exception):
    """A failure the user can act on. The CLI prints str(error) on one line and exits with code 1."""


class CheckpointError(ClipdeskError):
    """A file that cannot be read as a CLIP checkpoint (truncated, unsafe, wrong keys or shapes)."""


class ModelPackageError(ClipdeskError):
    """A model package folder that is missing, incomplete or inconsistent."""


class EmptyLibraryError(ClipdeskError):
    """The library has nothing to work on yet: no folders, or no photo indexed. The message is the CLI's
    (it names `clipdesk index FOLDER`); a GUI catches this class and says "Add a folder" in its own words."""


class DiskFullError(ClipdeskError):
    """The disk that holds clipdesk's data is full; what was done so far is kept."""


def is_disk_full(error: BaseException) -> bool:
    """SQLite's SQLITE_FULL ("database or disk is full") or the OS's ENOSPC / EDQUOT."""
    import errno
    import sqlite3

    if isinstance(error, sqlite3.Error):
        return getattr(error, "sqlite_errorcode", None) == 13 or "database or disk is full" in str(error)
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def disk_full_error(folder, what: str) -> DiskFullError:
    """One line: the disk is full, where, how much is free, what happened, and what to do."""
    import shutil

    try:
        left = shutil.disk_usage(folder).free
        free = f"{left / 1e6:,.1f} MB free" if left >= 1e6 else f"{left / 1e3:,.0f} kB free"
    except OSError:
        free = "no space left"
    return DiskFullError(f"the disk holding {folder} is full ({free}): {what}; free some space, then run the same "
                         "command again")


# Where warnings for people go: the CLI prints them, the app shows them; nowhere until a front end says.
_warning_sink = None


def send_warnings_to(sink) -> None:
    """`sink(message)` receives each one-line warning (None: warnings are dropped, and checks made only to
    warn are skipped)."""
    global _warning_sink
    _warning_sink = sink


def warnings_wanted() -> bool:
    return _warning_sink is not None


def warn(message: str) -> None:
    if _warning_sink is not None:
        _warning_sink(message)
