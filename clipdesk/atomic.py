"""Writing files in one rename: a crash leaves the old file or the new one, never half of either."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager


@contextmanager
def _replacing(path: str, overwrite: bool):
    """A binary handle on a hidden temporary file beside `path`, renamed onto it when the block ends
    without an error (and removed when it does not). An existing file keeps its permissions;
    `overwrite=False` refuses to replace one (FileExistsError). A symbolic link stays a link: the file
    it points to is the one written."""
    path = os.fspath(path)
    if os.path.islink(path):
        path = os.path.realpath(path)
    folder = os.path.dirname(path) or "."
    descriptor, temporary = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if os.path.exists(path):
            os.chmod(temporary, os.stat(path).st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
        if overwrite:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)  # fails if `path` appeared meanwhile, unlike a rename
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links: check, then rename
                if os.path.lexists(path):
                    raise FileExistsError(path) from None
                os.replace(temporary, path)
            else:
                os.unlink(temporary)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def write_atomically(path: str, data: bytes, *, overwrite: bool = True) -> None:
    """Write `data` to `path` through a hidden temporary file beside it (see _replacing)."""
    with _replacing(path, overwrite) as handle:
        handle.write(data)


def write_lines_atomically(path: str, lines: Iterable[str]) -> int:
    """Write each of `lines` plus a newline, UTF-8, streamed (manifests of hundreds of MB); returns the count."""
    count = 0
    with _replacing(path, overwrite=True) as handle:
        for line in lines:
            handle.write((line + "\n").encode("utf-8"))
            count += 1
    return count


@contextmanager
def folder_in_place_of(target, staging):
    """Yields the empty folder `staging`, which replaces the folder `target` when the block ends without an
    error, and is removed when it does not (a killed process leaves only the hidden staging folder)."""
    import shutil

    try:
        yield staging
        if os.path.exists(target):
            shutil.rmtree(target)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
