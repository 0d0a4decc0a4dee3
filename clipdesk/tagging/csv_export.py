"""`clipdesk export csv|json`: one row per photo with its tags, suggestion scores and date taken.

Columns: path, tags (the user's, "; " between them), suggestions ("tag=confidence", "; " between),
taken_at (EXIF date, ISO 8601). Paths are written exactly: a name that is not valid UTF-8 keeps its
bytes in the CSV (surrogateescape) and is escaped as \\udcXX in JSON (see library/pathnames.py).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass

from clipdesk.errors import ClipdeskError
from clipdesk.library.pathnames import from_db_path, json_text
from clipdesk.atomic import write_atomically
from clipdesk.tagging.names import clean_name

COLUMNS = ("path", "tags", "suggestions", "taken_at")
LIST_SEPARATOR = "; "


@dataclass
class PhotoRow:
    path: str
    tags: list[str]
    suggestions: list[tuple[str, float | None]]
    taken_at: str | None

    def to_dict(self) -> dict:
        return {"path": self.path, "tags": self.tags, "taken_at": self.taken_at,
                "suggestions": [{"tag": tag, "confidence": None if score is None else round(score, 6)}
                                for tag, score in self.suggestions]}

    def to_csv(self) -> list[str]:
        scores = [f"{tag}={'' if score is None else f'{score:.4f}'}" for tag, score in self.suggestions]
        return [self.path, LIST_SEPARATOR.join(self.tags), LIST_SEPARATOR.join(scores), self.taken_at or ""]


def export_rows(library, tag: str | None = None) -> list[PhotoRow]:
    """Every indexed photo (only those with user tag `tag` when given), by path."""
    query = "SELECT id, path, taken_at FROM photos WHERE status = 'ok'"
    params: tuple = ()
    if tag is not None:
        query += (" AND id IN (SELECT pt.photo_id FROM photo_tags AS pt JOIN tags AS t ON t.id = pt.tag_id "
                  "WHERE pt.source = 'user' AND t.name = ? COLLATE NOCASE)")
        params = (clean_name(tag),)
    with library.snapshot() as conn:
        photos = conn.execute(query + " ORDER BY path", params).fetchall()
        tags: dict[int, list[tuple[str, str, float | None]]] = {}
        for photo_id, name, source, confidence in conn.execute(
                "SELECT pt.photo_id, t.name, pt.source, pt.confidence FROM photo_tags AS pt JOIN tags AS t "
                "ON t.id = pt.tag_id ORDER BY t.name COLLATE NOCASE"):
            tags.setdefault(photo_id, []).append((name, source, confidence))
    rows = []
    for photo_id, path, taken_at in photos:
        entries = tags.get(photo_id, [])
        suggested = sorted(((name, confidence) for name, source, confidence in entries if source == "suggested"),
                           key=lambda item: -(item[1] or 0.0))
        rows.append(PhotoRow(from_db_path(path), [name for name, source, _ in entries if source == "user"],
                             suggested, taken_at))
    return rows


def _write(out: str, data: bytes, overwrite: bool) -> None:
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise ClipdeskError(f"{folder}: no such folder for {out}")
    try:
        write_atomically(out, data, overwrite=overwrite)
    except FileExistsError:
        raise ClipdeskError(f"{out} exists; choose another file name or pass --overwrite") from None
    except OSError as exc:
        raise ClipdeskError(f"{out}: cannot write ({exc.strerror or exc})") from None


def write_csv(rows: list[PhotoRow], out: str, *, overwrite: bool = False) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows(row.to_csv() for row in rows)
    _write(out, buffer.getvalue().encode("utf-8", errors="surrogateescape"), overwrite)


def write_json(rows: list[PhotoRow], out: str, *, overwrite: bool = False) -> None:
    _write(out, (json_text([row.to_dict() for row in rows]) + "\n").encode("utf-8"), overwrite)


def read_csv(path: str) -> list[dict]:
    """Rows of a CSV written by write_csv (for tests and round trips)."""
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
        return list(csv.DictReader(handle))


