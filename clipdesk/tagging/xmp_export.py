"""`clipdesk export xmp`: the user's tags written into XMP sidecars beside the photos.

Only confirmed (user) tags are written, never suggestions. A tag that is a label of a label set is
also written as `label set|label` to lr:hierarchicalSubject. Sidecars are merged, never emptied: a tag
removed in clipdesk stays in a sidecar that already has it (other programs may have put it there).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from clipdesk.errors import ClipdeskError
from clipdesk.library.pathnames import display_path, from_db_path
from clipdesk.progress import Progress
from clipdesk.tagging import xmp
from clipdesk.tagging.label_sets import label_sets
from clipdesk.tagging.names import clean_name


@dataclass
class XmpExport:
    photos: int = 0
    written: int = 0  # sidecars created or changed
    unchanged: int = 0  # already held every keyword
    failed: list[str] = field(default_factory=list)  # one line per photo

    def to_dict(self) -> dict:
        return {"photos": self.photos, "written": self.written, "unchanged": self.unchanged, "failed": self.failed}


def hierarchy_paths(library) -> dict[str, list[str]]:
    """tag (case-folded) -> its "label set|label" paths."""
    paths: dict[str, list[str]] = {}
    for label_set in label_sets(library):
        for label in label_set.labels:
            paths.setdefault(label.casefold(), []).append(f"{label_set.name}{xmp.SEPARATOR}{label}")
    return paths


def user_tags_by_photo(library, tag: str | None = None) -> list[tuple[int, str, list[str]]]:
    """(photo id, path, user tags) for photos with user tags (only `tag` when given), by path."""
    query = ("SELECT p.id, p.path, t.name FROM photo_tags AS pt JOIN tags AS t ON t.id = pt.tag_id "
             "JOIN photos AS p ON p.id = pt.photo_id WHERE pt.source = 'user'")
    params: tuple = ()
    if tag is not None:
        query += " AND t.name = ? COLLATE NOCASE"
        params = (clean_name(tag),)
    grouped: dict[int, tuple[str, list[str]]] = {}
    for photo_id, path, name in library.conn.execute(query + " ORDER BY p.path, t.name COLLATE NOCASE", params):
        grouped.setdefault(photo_id, (from_db_path(path), []))[1].append(name)
    return [(photo_id, path, names) for photo_id, (path, names) in grouped.items()]


def export_sidecars(library, tag: str | None = None, *, naming: str = "ext",
                    progress: Progress | None = None) -> XmpExport:
    progress = progress or Progress()
    xmp.sidecar_path("photo.jpg", naming)  # checks the naming before anything is written
    photos = user_tags_by_photo(library, tag)
    if tag is not None and not photos:
        raise ClipdeskError(f"no photo has the tag {clean_name(tag)!r}; `clipdesk tag list` shows the tags")
    hierarchy = hierarchy_paths(library)
    summary = XmpExport()
    for done, (_, path, names) in enumerate(photos, 1):
        if progress.cancelled:
            break
        summary.photos += 1
        if not os.path.isfile(path):
            summary.failed.append(f"{display_path(path)}: the photo is not there any more; no sidecar written")
            continue
        hierarchical = [entry for name in names for entry in hierarchy.get(name.casefold(), [])]
        try:
            result = xmp.write_sidecar(path, names, hierarchical, naming=naming)
        except ClipdeskError as exc:
            summary.failed.append(str(exc))
            continue
        if result.added or result.created:
            summary.written += 1
        else:
            summary.unchanged += 1
        progress.update(done, len(photos))
    return summary
