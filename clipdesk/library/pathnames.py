"""How the library stores file paths, and how to show them.

Paths are stored as BLOBs holding the operating system's own bytes (`os.fsencode` of the absolute
path), so names that are not valid UTF-8 round-trip exactly. The API hands them out as `str` made by
`os.fsdecode`: undecodable bytes become lone surrogates ("surrogateescape"), which `open()` and
`os.fsencode` turn back into the same bytes. Such a `str` cannot be printed or encoded as UTF-8
as is: use `display_path` for people and `json_text` for JSON.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

PathInput = str | bytes | os.PathLike

_SEP = os.sep.encode()
# The byte right after the separator: every path below a folder sorts in [folder + sep, folder + _AFTER_SEP).
_AFTER_SEP = bytes([_SEP[0] + 1])


def to_db_path(path: PathInput) -> bytes:
    """The stored form: absolute (symbolic links kept as given, so a photo keeps the name its user sees)."""
    return os.fsencode(os.path.abspath(os.fsencode(path)))


def from_db_path(value: bytes) -> str:
    return os.fsdecode(value)


_CONTROL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def display_path(path: PathInput) -> str:
    """For people: undecodable bytes shown as U+FFFD, control characters escaped (a newline in a file name
    shows as \\n, as `ls` does), so that one path is always one line."""
    text = os.fsencode(path).decode("utf-8", errors="replace")
    return _CONTROL.sub(lambda match: _CONTROL_ESCAPES.get(match.group(), f"\\x{ord(match.group()):02x}"), text)


def subtree_range(folder: bytes) -> tuple[bytes, bytes]:
    """(low, high) such that `low <= path < high` selects exactly the paths below `folder` (an index range scan)."""
    base = folder.rstrip(_SEP)
    return base + _SEP, base + _AFTER_SEP


def is_within(path: bytes, folder: bytes) -> bool:
    """Whether `path` is `folder` itself or below it."""
    low, high = subtree_range(folder)
    return path == folder.rstrip(_SEP) or low <= path < high


def json_text(value: Any) -> str:
    """JSON for stdout that keeps undecodable path bytes exact.

    A lone surrogate cannot be written as UTF-8; `backslashreplace` writes it as `\\udcXX`, which inside
    a JSON string is the escape JSON readers turn back into the same surrogate (and `os.fsencode` into
    the original byte).
    """
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return text.encode("utf-8", errors="backslashreplace").decode("utf-8")
