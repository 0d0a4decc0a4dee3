"""Writing files in one rename: a crash leaves the old file or the new one, never half of either."""

from __future__ import annotations

import os
import tempfile


def write_atomically(path: str, data: bytes, *, overwrite: bool = True) -> None:
    """Write `data` to `path` through a hidden temporary file beside it. An existing file keeps its
    permissions; `overwrite=False` refuses to replace one (FileExistsError)."""
    folder = os.path.dirname(path) or "."
    descriptor, temporary = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
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
