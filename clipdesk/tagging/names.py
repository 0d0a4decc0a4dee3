"""One cleaning rule for tag and label names (a label becomes a tag when it is applied).

Whitespace runs become one space; `|` is refused because XMP's lr:hierarchicalSubject uses it to
separate levels ("label set|label"); control characters are refused because sidecars and CSV files
carry the names. Tags compare without regard to case everywhere (search's `tag:` filter does too).
"""

from __future__ import annotations

import re
import unicodedata

from clipdesk.errors import ClipdeskError

MAX_NAME_LENGTH = 200
HIERARCHY_SEPARATOR = "|"
_WHITESPACE = re.compile(r"\s+")


def clean_name(name: str, what: str = "tag") -> str:
    """`name` tidied, or ClipdeskError saying why it cannot be a tag or label."""
    text = _WHITESPACE.sub(" ", unicodedata.normalize("NFC", str(name))).strip()
    if not text:
        raise ClipdeskError(f"empty {what} name; give at least one visible character")
    if HIERARCHY_SEPARATOR in text:
        raise ClipdeskError(f"{what} {text!r}: '|' is not allowed (XMP uses it between hierarchy levels)")
    if any(unicodedata.category(char) in ("Cc", "Cf") for char in text):
        raise ClipdeskError(f"{what} {text!r}: control characters are not allowed")
    if len(text) > MAX_NAME_LENGTH:
        raise ClipdeskError(f"{what} {text[:40]!r}...: longer than {MAX_NAME_LENGTH} characters")
    return text


def unique_names(names, what: str = "tag") -> list[str]:
    """Cleaned names in their first order, duplicates (ignoring case) dropped."""
    seen: dict[str, str] = {}
    for name in names:
        text = clean_name(name, what)
        seen.setdefault(text.casefold(), text)
    return list(seen.values())
