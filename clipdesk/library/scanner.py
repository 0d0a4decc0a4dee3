"""Finding photo files below a folder: names as raw bytes, symbolic links followed, loops and unreadable
folders recorded instead of stopping the walk.

Hidden files and folders (names starting with ".") are skipped: they hold other programs' caches,
trash and macOS "._" resource forks, which carry image extensions without being images.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from clipdesk.runtime.heif import register_heif_decoder
from clipdesk.runtime.raw import RAW_EXTENSIONS
from clipdesk.runtime.video_frames import VIDEO_EXTENSIONS, video_support

BASE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".dib", ".tif", ".tiff")
HEIF_EXTENSIONS = (".heic", ".heif", ".hif")
AVIF_EXTENSIONS = (".avif",)
_NOT_REGULAR = "not a regular file (a device, pipe or socket); never opened"
_LOOP = "symbolic link loop (leads back to a folder that contains it); skipped"
_REPEAT = "same folder as one already scanned (reached through a link); skipped"


def supported_extensions() -> frozenset[bytes]:
    """The extensions of files clipdesk decodes here (registering the HEIF decoder with Pillow, once)."""
    from PIL import features

    names = BASE_EXTENSIONS + (HEIF_EXTENSIONS if register_heif_decoder() else ())
    names += AVIF_EXTENSIONS if features.check("avif") else ()
    names += RAW_EXTENSIONS
    names += VIDEO_EXTENSIONS if video_support() is None else ()
    return frozenset(name.encode() for name in names)


_VIDEO_EXTENSIONS = frozenset(name.encode() for name in VIDEO_EXTENSIONS)


@dataclass(frozen=True)
class FoundFile:
    path: bytes
    size: int | None
    mtime_ns: int | None
    error: str | None = None  # set when the name looks like a photo but cannot even be stat'ed


@dataclass
class ScanResult:
    files: list[FoundFile] = field(default_factory=list)
    problems: list[tuple[bytes, str]] = field(default_factory=list)  # (folder or link, reason)
    unlisted: list[bytes] = field(default_factory=list)  # folders whose contents are unknown this time
    videos_skipped: int = 0  # video files left out because this install cannot read videos


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def _link_problem(path: bytes) -> str | None:
    """Why a symbolic link cannot be followed, or None when it can."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        if exc.errno == errno.ENOENT:
            return "broken symbolic link (its target does not exist)"
        return f"cannot follow symbolic link ({_reason(exc)})"
    return None


def scan_folder(root: bytes, visited: set[tuple[int, int]] | None = None,
                on_folder: Callable[[int], None] | None = None, skip: frozenset[bytes] = frozenset()) -> ScanResult:
    """Every file below `root` with a supported extension, in a stable order.

    `visited` holds (device, inode) of folders already walked; passing one set to several scans keeps
    a folder reached twice (through links or overlapping roots) from being indexed twice. Folders in
    `skip` are not entered. `on_folder(files_found_so_far)` is called after each folder, for progress.
    """
    extensions = supported_extensions()
    visited = set() if visited is None else visited
    result = ScanResult()
    try:
        root_stat = os.stat(root)
    except OSError as exc:
        result.problems.append((root, f"folder not available ({_reason(exc)}); its photos stay in the library"))
        result.unlisted.append(root)
        return result
    if not stat.S_ISDIR(root_stat.st_mode):
        result.problems.append((root, "not a folder any more; its photos stay in the library"))
        result.unlisted.append(root)
        return result
    root_key = (root_stat.st_dev, root_stat.st_ino)
    if root_key in visited:
        return result
    visited.add(root_key)
    # Depth first; each entry carries the (device, inode) of its ancestors to tell loops from mere repeats.
    stack: list[tuple[bytes, frozenset]] = [(root, frozenset([root_key]))]
    while stack:
        folder, ancestors = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            result.problems.append((folder, f"cannot list folder ({_reason(exc)}); its photos stay in the library"))
            result.unlisted.append(folder)
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith(b".") or entry.path in skip:
                continue
            path = entry.path
            try:
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()
            except OSError:
                is_dir = is_file = False
            if is_dir:
                try:
                    info = entry.stat()
                except OSError as exc:
                    result.problems.append((path, f"cannot open folder ({_reason(exc)})"))
                    result.unlisted.append(path)
                    continue
                key = (info.st_dev, info.st_ino)
                if key in ancestors:
                    result.problems.append((path, _LOOP))
                elif key in visited:
                    result.problems.append((path, _REPEAT))
                else:
                    visited.add(key)
                    subfolders.append((path, ancestors | {key}))
                continue
            extension = os.path.splitext(entry.name)[1].lower()
            looks_like_photo = extension in extensions
            if not looks_like_photo and extension in _VIDEO_EXTENSIONS:
                result.videos_skipped += 1
            if is_file and looks_like_photo:
                try:
                    info = entry.stat()
                except OSError as exc:  # vanished since the listing
                    result.files.append(FoundFile(path, None, None, f"cannot read file information ({_reason(exc)})"))
                    continue
                result.files.append(FoundFile(path, info.st_size, info.st_mtime_ns))
            elif entry.is_symlink():
                problem = _link_problem(path)
                if looks_like_photo:
                    result.files.append(FoundFile(path, None, None, problem or _NOT_REGULAR))
                elif problem and problem.startswith("symbolic link loop"):
                    result.problems.append((path, problem))
            elif looks_like_photo:
                result.files.append(FoundFile(path, None, None, _NOT_REGULAR))
        stack.extend(reversed(subfolders))  # so that folders are walked in name order
        if on_folder:
            on_folder(len(result.files))
    return result
