"""`clipdesk export copy`: copies (or symbolic links) of the photos with a tag, gathered in one folder.

Never overwrites: a name already taken by a different file gets " (2)", " (3)"... before its
extension; a file that is already there with the same content (or a link to the same photo) is left
as it is, so running the export again adds only what is new. Each copy is created exclusively (O_EXCL)
and removed again if copying fails half way.
"""

from __future__ import annotations

import filecmp
import os
import shutil
from dataclasses import dataclass, field

from clipdesk.errors import ClipdeskError
from clipdesk.library.pathnames import display_path
from clipdesk.tagging.names import clean_name
from clipdesk.tagging.tags import photos_with_tag

MAX_SUFFIX = 10000


@dataclass
class CopyExport:
    copied: int = 0  # copies or links made
    already: int = 0  # already in the folder from an earlier export
    failed: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)  # the files made

    def to_dict(self) -> dict:
        return {"copied": self.copied, "already": self.already, "failed": self.failed, "targets": self.targets}


def _candidates(folder: str, name: str):
    stem, extension = os.path.splitext(name)
    yield os.path.join(folder, name)
    for number in range(2, MAX_SUFFIX):
        yield os.path.join(folder, f"{stem} ({number}){extension}")


def _same(source: str, target: str, link: bool) -> bool:
    if link:
        return os.path.islink(target) and os.readlink(target) == source
    return os.path.isfile(target) and not os.path.islink(target) and filecmp.cmp(source, target, shallow=False)


def _copy_exclusive(source: str, target: str) -> None:
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with open(source, "rb") as reader, os.fdopen(descriptor, "wb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
        shutil.copystat(source, target)
    except BaseException:
        os.unlink(target)
        raise


def place(source: str, folder: str, *, link: bool = False) -> tuple[str, bool]:
    """(target, made) for one photo: made False when an identical file or link was already there."""
    for target in _candidates(folder, os.path.basename(source)):
        if os.path.lexists(target):
            if _same(source, target, link):
                return target, False
            continue
        try:
            if link:
                os.symlink(source, target)
            else:
                _copy_exclusive(source, target)
        except FileExistsError:  # appeared between the check and the create: try the next name
            continue
        return target, True
    raise ClipdeskError(f"{display_path(folder)}: too many files named like {display_path(os.path.basename(source))}")


def copy_tagged(library, tag: str, destination: str, *, link: bool = False) -> CopyExport:
    tag = clean_name(tag)
    photo_ids = photos_with_tag(library, tag)
    if not photo_ids:
        raise ClipdeskError(f"no photo has the tag {tag!r}; `clipdesk tag list` shows the tags")
    destination = os.path.abspath(os.path.expanduser(destination))
    if os.path.exists(destination) and not os.path.isdir(destination):
        raise ClipdeskError(f"{display_path(destination)} exists and is not a folder")
    os.makedirs(destination, exist_ok=True)
    summary = CopyExport()
    for source in library.photo_paths(photo_ids):
        if source is None or not os.path.isfile(source):
            summary.failed.append(f"{display_path(source or '?')}: the photo is not there any more")
            continue
        try:
            target, made = place(source, destination, link=link)
        except (OSError, ClipdeskError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            summary.failed.append(f"{display_path(source)}: {reason}")
            continue
        if made:
            summary.copied += 1
            summary.targets.append(target)
        else:
            summary.already += 1
    return summary
