"""Keywords other programs wrote, read into the user's tags: XMP sidecars, embedded XMP, IPTC.

    keywords = read_keywords(path, data)          # any thread; `data` = the file's bytes if already read
    store_keywords(library.conn, photo_id, keywords)  # inside the caller's write transaction

Keywords count as the user's own tags (someone typed them); a tag first made from one is marked
`tags.from_files`, so the app can list keywords apart from the tags made in clipdesk. They are only ever added: a tag the user
removed in clipdesk is remembered as rejected and not brought back from a sidecar that still has it.
Keywords that cannot be tags (containing `|`, control characters) are skipped.
"""

from __future__ import annotations

import io
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image, IptcImagePlugin

from clipdesk.errors import ClipdeskError
from clipdesk.library.pathnames import display_path
from clipdesk.progress import Progress
from clipdesk.tagging import xmp
from clipdesk.tagging.names import clean_name
from clipdesk.tagging.tags import is_rejected, tag_id

IPTC_KEYWORDS = (2, 25)
IPTC_CHARSET = (1, 90)
UTF8_ESCAPE = b"\x1b%G"
MAX_READ_BYTES = 512 * 1024 * 1024


def _text(value: bytes, utf8: bool) -> str:
    if utf8:
        return value.decode("utf-8", errors="replace")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:  # IPTC without a declared charset: older writers used Latin-1 / cp1252
        return value.decode("cp1252", errors="replace")


JPEG_IPTC_MARK = b"Photoshop 3.0\x00"  # how Pillow (and the format) recognises the APP13 block


def iptc_keywords(data: bytes) -> list[str]:
    """IPTC-IIM keywords (2:25) of a JPEG or TIFF, decoded as its 1:90 charset says (UTF-8 or legacy)."""
    if data[:2] == b"\xff\xd8" and JPEG_IPTC_MARK not in data:
        return []  # a JPEG keeps IPTC only in a Photoshop APP13 block: no need to open it (~0.2 ms)
    try:
        with Image.open(io.BytesIO(data)) as image:
            info = IptcImagePlugin.getiptcinfo(image) or {}
    except Exception:  # noqa: BLE001 - Pillow raises many kinds on odd files; no IPTC is the answer
        return []
    values = info.get(IPTC_KEYWORDS, [])
    values = values if isinstance(values, list) else [values]
    utf8 = info.get(IPTC_CHARSET, b"") == UTF8_ESCAPE
    return [_text(value, utf8).strip() for value in values if isinstance(value, bytes) and value.strip()]


def embedded_keywords(data: bytes, source: str = "photo") -> list[str]:
    """Keywords in a file's own metadata: its XMP packet, then IPTC."""
    found: list[str] = []
    packet = xmp.find_packet(data)
    if packet is not None:
        try:
            found += xmp.read_keywords(packet, source)
        except ClipdeskError:
            pass  # a damaged embedded packet: the photo still has its other keywords
    return found + iptc_keywords(data)


def read_keywords(path: str, data: bytes | None = None) -> list[str]:
    """A photo's keywords from its sidecars and its own metadata, cleaned, without duplicates (any case).
    Unreadable sidecars or files give no keywords rather than an error."""
    found: list[str] = []
    try:
        sidecars = xmp.existing_sidecars(path)
    except OSError:  # one vanished between two checks (samefile): the indexer must not stop for that
        sidecars = []
    for sidecar in sidecars:
        try:
            found += xmp.read_keywords(xmp.read_sidecar(sidecar), sidecar)
        except ClipdeskError:
            continue
    if data is None:
        try:
            if os.path.getsize(path) <= MAX_READ_BYTES:
                with open(path, "rb") as handle:
                    data = handle.read()
        except OSError:
            data = None
    if data:
        found += embedded_keywords(data, display_path(path))
    keywords: dict[str, str] = {}
    for keyword in found:
        try:
            name = clean_name(keyword)
        except ClipdeskError:
            continue
        keywords.setdefault(name.casefold(), name)
    return list(keywords.values())


def store_keywords(conn: sqlite3.Connection, photo_id: int, keywords: Sequence[str]) -> int:
    """Add keywords to a photo as user tags inside the caller's transaction (a suggestion of the same
    tag becomes the user's); rejected ones are skipped. Returns rows added or confirmed."""
    changed = 0
    for keyword in keywords:
        tag = tag_id(conn, keyword, create=True, from_files=True)
        if is_rejected(conn, photo_id, tag):
            continue
        changed += conn.execute(
            "INSERT INTO photo_tags (photo_id, tag_id, source, confidence) VALUES (?, ?, 'user', NULL) "
            "ON CONFLICT (photo_id, tag_id) DO UPDATE SET source = 'user' WHERE source <> 'user'",
            (photo_id, tag)).rowcount
    return changed


@dataclass
class KeywordImport:
    photos: int = 0  # photos read
    with_keywords: int = 0
    added: int = 0  # tag rows added or confirmed
    unreadable: list[str] = field(default_factory=list)


def import_keywords(library, photo_ids: Sequence[int] | None = None, *, progress: Progress | None = None
                    ) -> KeywordImport:
    """Read keywords of library photos (all, or the given ids) into their tags."""
    progress = progress or Progress()
    if photo_ids is None:
        rows = library.conn.execute("SELECT id, path FROM photos WHERE status = 'ok' ORDER BY path").fetchall()
    else:
        wanted = set(int(i) for i in photo_ids)
        rows = [row for row in library.conn.execute("SELECT id, path FROM photos ORDER BY path") if row[0] in wanted]
    summary = KeywordImport()
    found: list[tuple[int, list[str]]] = []
    for done, (photo_id, path) in enumerate(rows, 1):
        if progress.cancelled:
            break
        path = os.fsdecode(path)
        if not os.path.exists(path):
            summary.unreadable.append(display_path(path))
            continue
        keywords = read_keywords(path)
        summary.photos += 1
        if keywords:
            summary.with_keywords += 1
            found.append((photo_id, keywords))
        progress.update(done, len(rows))
    with library.transaction() as conn:
        for photo_id, keywords in found:
            summary.added += store_keywords(conn, photo_id, keywords)
    return summary
