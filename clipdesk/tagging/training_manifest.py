"""A training manifest for `clipdesk train` from the library's photos and their confirmed tags. Qt-free.

Only tags the user confirmed (photo_tags.source = 'user') are used: suggestions are the current model's
guesses, and training on them would teach the model its own mistakes. Each row is
`{"image": PATH, "captions": [...]}` (clipdesk/train/data.py reads it), with `"label"` when the photo has
exactly one of the chosen tags, for zero-shot evaluation. PATH is relative to the manifest's folder when
the photo lies inside it, else absolute (data.py joins it to the manifest's folder, and an absolute path
survives that join): a library photo elsewhere stays found when the manifest is moved.

Photos whose file is gone, or that the library could not read (status 'error'), are skipped and counted.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from clipdesk.errors import ClipdeskError
from clipdesk.library.pathnames import display_path, from_db_path
from clipdesk.atomic import write_atomically
from clipdesk.tagging.names import clean_name
from clipdesk.tagging.tags import USER, photos_with_tag, tag_counts, tag_id, tags_of_photos

_CHUNK = 500  # ids per IN (...) list: under SQLite's bound-parameter limit
_MOST_IN_ONE_CAPTION = 4  # tags joined in one caption: keeps it well inside CLIP's 77 tokens
SKIP_MISSING, SKIP_ERROR = "missing", "error"


def _with_article(tag: str) -> str:
    return ("an " if tag[:1].lower() in "aeiou" else "a ") + tag


def captions_for(tags: Sequence[str]) -> list[str]:
    """Caption phrasings for a photo with these (confirmed) tags, without repeats.

    Why several: the training loader picks one caption per row and epoch, so a photo seen over several
    epochs is paired with each phrasing. "a photo of a dog" is the form zero-shot labels and prompts use,
    bare "dog" is how people type searches, and a combined "a photo of a dog and a beach" ties tags that
    occur together, so a query naming both finds the photo. Only the first few tags are combined, so that
    a caption stays short of the text encoder's token limit.
    """
    names = list(dict.fromkeys(tag.strip() for tag in tags if tag.strip()))
    captions: list[str] = []
    for name in names:
        captions += [f"a photo of {_with_article(name)}", name]
    if len(names) > 1:
        joined = [_with_article(name) for name in names[:_MOST_IN_ONE_CAPTION]]
        captions.append("a photo of " + ", ".join(joined[:-1]) + " and " + joined[-1])
        captions.append(", ".join(names[:_MOST_IN_ONE_CAPTION]))
    return list(dict.fromkeys(captions))


@dataclass
class ManifestSummary:
    out: str
    rows: int = 0
    tags: dict[str, int] = field(default_factory=dict)  # rows carrying each chosen tag
    skipped: Counter = field(default_factory=Counter)  # SKIP_MISSING / SKIP_ERROR -> photos

    def to_dict(self) -> dict:
        return {"out": self.out, "rows": self.rows, "tags": dict(self.tags),
                "skipped": {SKIP_MISSING: self.skipped[SKIP_MISSING], SKIP_ERROR: self.skipped[SKIP_ERROR]}}

    def line(self) -> str:
        skipped = sum(self.skipped.values())
        missing, unreadable = self.skipped[SKIP_MISSING], self.skipped[SKIP_ERROR]
        detail = f" ({missing} file missing, {unreadable} unreadable)" if skipped else ""
        return (f"wrote {self.rows} row{'s' if self.rows != 1 else ''} for {len(self.tags)} "
                f"tag{'s' if len(self.tags) != 1 else ''} to {display_path(self.out)}; {skipped} skipped{detail}")


def _stored_names(library, names: Iterable[str] | None) -> list[str]:
    """The chosen tags as the library spells them; all tags with a confirmed photo when none are given."""
    if names is None:
        return [count.name for count in tag_counts(library) if count.photos]
    chosen: list[str] = []
    for name in names:
        tag = tag_id(library.conn, name)
        if tag is None:
            raise ClipdeskError(f"no tag {clean_name(name)!r} in the library; see `clipdesk tag list`")
        stored = library.conn.execute("SELECT name FROM tags WHERE id = ?", (tag,)).fetchone()[0]
        if stored not in chosen:
            chosen.append(stored)
    return chosen


def _photo_states(library, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """photo id -> (path, status)."""
    found: dict[int, tuple[str, str]] = {}
    for start in range(0, len(ids), _CHUNK):
        part = [int(i) for i in ids[start:start + _CHUNK]]
        rows = library.conn.execute(
            f"SELECT id, path, status FROM photos WHERE id IN ({','.join('?' * len(part))})", part)
        found.update((photo_id, (from_db_path(path), status)) for photo_id, path, status in rows)
    return found


def _manifest_path(photo: str, folder: str) -> str:
    relative = os.path.relpath(photo, folder) if os.path.isabs(photo) else photo
    if relative == os.pardir or relative.startswith(os.pardir + os.sep) or os.path.isabs(relative):
        return photo
    return relative.replace(os.sep, "/")


def manifest_rows(library, out: str, names: Iterable[str] | None = None) -> tuple[list[dict], ManifestSummary]:
    """The manifest's rows (in photo id order) for the chosen tags, and what was written and skipped."""
    out = os.path.abspath(os.fsdecode(out))
    folder = os.path.dirname(out)
    summary = ManifestSummary(out)
    rows: list[dict] = []
    with library.snapshot():
        chosen = _stored_names(library, list(names) if names is not None else None)
        order = {name.casefold(): index for index, name in enumerate(chosen)}
        ids = sorted({photo_id for name in chosen for photo_id in photos_with_tag(library, name)})
        states = _photo_states(library, ids)
        tagged = tags_of_photos(library, ids)
    counts: Counter = Counter()
    for photo_id in ids:
        if photo_id not in states:
            continue
        path, status = states[photo_id]
        if status != "ok":
            summary.skipped[SKIP_ERROR] += 1
            continue
        if not os.path.isfile(path):
            summary.skipped[SKIP_MISSING] += 1
            continue
        names_here = sorted({t.name for t in tagged[photo_id] if t.source == USER and t.name.casefold() in order},
                            key=lambda name: order[name.casefold()])
        if not names_here:
            continue
        row = {"image": _manifest_path(path, folder), "captions": captions_for(names_here)}
        if len(names_here) == 1:
            row["label"] = names_here[0]
        rows.append(row)
        counts.update(names_here)
    summary.rows = len(rows)
    summary.tags = {name: counts[name] for name in chosen if counts[name]}
    return rows, summary


def manifest_text(rows: Iterable[dict]) -> bytes:
    """JSONL. A path byte that is not UTF-8 (a lone surrogate after os.fsdecode) is written as the JSON
    escape `\\udcXX`, which json.loads and os.fsencode turn back into the same byte."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8", "backslashreplace")


def write_manifest(library, out, names: Iterable[str] | None = None) -> ManifestSummary:
    """Write the manifest to `out` in one rename; nothing is written when no photo qualifies."""
    rows, summary = manifest_rows(library, out, names)
    if not rows:
        skipped = sum(summary.skipped.values())
        raise ClipdeskError(f"no photo with a confirmed tag to write ({skipped} skipped: "
                            f"{summary.skipped[SKIP_MISSING]} file missing, {summary.skipped[SKIP_ERROR]} unreadable); "
                            "confirm tags with `clipdesk tag add TAG PATH...`; nothing written")
    os.makedirs(os.path.dirname(summary.out), exist_ok=True)
    write_atomically(summary.out, manifest_text(rows))
    return summary
