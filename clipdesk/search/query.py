"""The search query language: text and image terms with weights, and filters.

    kids on a beach                     one text term
    "2:red car" + beach - people        weighted terms: 2*"red car" + "beach" - "people"
    ~/Pictures/dog.jpg + snow           an image term (a photo's path) mixed with text
    like:"my shots/a.png"               an image term whose name does not end like an image file
    beach tag:family -tag:work folder:~/Pictures date:2023-06 after:2020 before:2021-03-01 is:video

Terms: a run of plain words is one term; a quoted phrase is one term; a sign (`+`/`-`, alone or
attached: `-people`) or a weight (`2:`, `0.5:`) starts a new term that the following plain words extend.
Adjacent terms add up. A term naming a file with an image extension (or written `like:PATH`) is an
image term. Filters narrow the photos searched: `tag:` (every one given must be confirmed on the photo),
`-tag:`, `folder:` (any of those given), `-folder:`, and dates on when the photo was taken:
`after:D` (on or after the start of D), `before:D` (before the start of D), `date:D` (within D) or
`date:D1..D2` (from the start of D1 to the end of D2), where D is YYYY, YYYY-MM or YYYY-MM-DD.
Photos without a date taken never match a date filter. `is:video` keeps only videos, `is:photo` (or
`-is:video`) only photos. Put a term in quotes to search for text that
looks like syntax (`"tag:x"`, `"- "`).

Parsing is pure: no files are looked at here (the searcher resolves image paths).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from clipdesk.errors import ClipdeskError
from clipdesk.runtime.raw import RAW_EXTENSIONS
from clipdesk.runtime.video_frames import VIDEO_EXTENSIONS

TEXT, IMAGE = "text", "image"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif",
                    ".hif", ".avif") + RAW_EXTENSIONS + VIDEO_EXTENSIONS  # a library video is "like" too
FILTER_KEYS = ("tag", "folder", "after", "before", "date", "is")
IMAGE_KEY = "like"
NEGATABLE_KEYS = ("tag", "folder", "is")
VIDEO, PHOTO = "video", "photo"  # is:video, is:photo
MAX_WEIGHT = 100.0

# A weight is digits (with an optional fraction) and a colon, followed by something other than a digit,
# so that "3:30 pm" stays text.
_WEIGHT = re.compile(r"^(\d+(?:\.\d+)?|\.\d+):(?!\d)")
_KEY = re.compile(r"^([A-Za-z]+):")
_DATE = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")


class QueryError(ClipdeskError):
    """A query that does not parse; the message says where and how to fix it."""


@dataclass(frozen=True)
class Term:
    kind: str  # TEXT or IMAGE
    value: str  # the text, or the image path as written
    weight: float = 1.0  # negative for subtracted terms


@dataclass(frozen=True)
class Filters:
    tags: tuple[str, ...] = ()  # all required
    exclude_tags: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()  # any of them, as written (the searcher resolves them)
    exclude_folders: tuple[str, ...] = ()
    taken_from: str | None = None  # ISO date, inclusive
    taken_until: str | None = None  # ISO date, exclusive
    kind: str | None = None  # VIDEO or PHOTO: only those

    @property
    def empty(self) -> bool:
        return self == Filters()


@dataclass(frozen=True)
class Query:
    terms: tuple[Term, ...] = ()
    filters: Filters = field(default_factory=Filters)

    @property
    def text_terms(self) -> tuple[Term, ...]:
        return tuple(term for term in self.terms if term.kind == TEXT)

    @property
    def image_terms(self) -> tuple[Term, ...]:
        return tuple(term for term in self.terms if term.kind == IMAGE)


@dataclass
class _Token:
    text: str
    quoted: list[bool]  # per character: written inside quotes
    position: int  # 1-based column, for messages

    @property
    def fully_quoted(self) -> bool:
        return bool(self.quoted) and all(self.quoted)

    def unquoted_prefix(self, length: int) -> bool:
        return not any(self.quoted[:length])

    def drop(self, count: int) -> "_Token":
        return _Token(self.text[count:], self.quoted[count:], self.position + count)


def _tokenize(text: str) -> list[_Token]:
    """Split on whitespace outside quotes; quotes group, `\\"` and `\\\\` escape inside them."""
    tokens: list[_Token] = []
    chars: list[str] = []
    quoted: list[bool] = []
    start, in_quote, was_quoted, quote_at, index = 0, False, False, 0, 0
    while index < len(text):
        char = text[index]
        if in_quote:
            if char == "\\" and index + 1 < len(text) and text[index + 1] in '"\\':
                chars.append(text[index + 1])
                quoted.append(True)
                index += 1
            elif char == '"':
                in_quote = False
            else:
                chars.append(char)
                quoted.append(True)
        elif char == '"':
            if not chars and not was_quoted:
                start = index
            in_quote, was_quoted, quote_at = True, True, index
        elif char.isspace():
            if chars or was_quoted:
                tokens.append(_Token("".join(chars), quoted, start + 1))
            chars, quoted, was_quoted = [], [], False
        else:
            if not chars and not was_quoted:
                start = index
            chars.append(char)
            quoted.append(False)
        index += 1
    if in_quote:
        raise QueryError(f'unclosed quote at column {quote_at + 1}: add the closing "')
    if chars or was_quoted:
        tokens.append(_Token("".join(chars), quoted, start + 1))
    return tokens


def _parse_date(value: str, key: str) -> tuple[dt.date, dt.date]:
    """[start, end) of the day, month or year that `value` names."""
    match = _DATE.match(value)
    if not match:
        raise QueryError(f"{key}:{value}: dates are written YYYY, YYYY-MM or YYYY-MM-DD")
    year, month, day = (int(part) if part else None for part in match.groups())
    try:
        if month is None:
            return dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
        if day is None:
            start = dt.date(year, month, 1)
            return start, (dt.date(year + 1, 1, 1) if month == 12 else dt.date(year, month + 1, 1))
        start = dt.date(year, month, day)
        return start, start + dt.timedelta(days=1)
    except (ValueError, OverflowError):
        raise QueryError(f"{key}:{value}: no such date") from None


def _date_range(key: str, value: str) -> tuple[dt.date | None, dt.date | None]:
    if key == "after":
        return _parse_date(value, key)[0], None
    if key == "before":
        return None, _parse_date(value, key)[0]
    if ".." in value:
        low, _, high = value.partition("..")
        if not low and not high:
            raise QueryError(f"date:{value}: give at least one end of the range, e.g. date:2020..2022")
        return (_parse_date(low, key)[0] if low else None), (_parse_date(high, key)[1] if high else None)
    return _parse_date(value, key)


def _is_image_path(text: str) -> bool:
    return text.lower().endswith(IMAGE_EXTENSIONS)


class _Builder:
    def __init__(self) -> None:
        self.terms: list[Term] = []
        self.words: list[str] = []  # plain words of the term being built
        self.sign = 1.0
        self.weight = 1.0
        self.tags: list[str] = []
        self.exclude_tags: list[str] = []
        self.folders: list[str] = []
        self.exclude_folders: list[str] = []
        self.taken_from: dt.date | None = None
        self.taken_until: dt.date | None = None
        self.kind: str | None = None

    def add_term(self, kind: str, value: str, sign: float, weight: float) -> None:
        self.terms.append(Term(kind, value, sign * weight))

    def start_run(self, first_word: str, sign: float, weight: float) -> None:
        self.end_run()
        self.words, self.sign, self.weight = [first_word], sign, weight

    def end_run(self) -> None:
        if self.words:
            text = " ".join(self.words)
            self.add_term(IMAGE if _is_image_path(text) and len(self.words) == 1 else TEXT, text, self.sign,
                          self.weight)
        self.words, self.sign, self.weight = [], 1.0, 1.0

    def add_filter(self, key: str, value: str, negated: bool) -> None:
        if key in ("tag", "folder"):
            target = {("tag", False): self.tags, ("tag", True): self.exclude_tags,
                      ("folder", False): self.folders, ("folder", True): self.exclude_folders}[key, negated]
            if value not in target:
                target.append(value)
            return
        if key == "is":
            kind = value.lower().rstrip("s")  # is:videos, is:photos
            if kind not in (VIDEO, PHOTO):
                raise QueryError(f"is:{value}: write is:video or is:photo")
            if negated:
                kind = PHOTO if kind == VIDEO else VIDEO
            if self.kind not in (None, kind):
                raise QueryError("is:video and is:photo together leave nothing: keep one of them")
            self.kind = kind
            return
        low, high = _date_range(key, value)
        if low is not None:
            self.taken_from = max(low, self.taken_from) if self.taken_from else low
        if high is not None:
            self.taken_until = min(high, self.taken_until) if self.taken_until else high

    def query(self) -> Query:
        self.end_run()
        if self.taken_from and self.taken_until and self.taken_from >= self.taken_until:
            raise QueryError(f"the date filters leave no dates (from {self.taken_from} to before "
                             f"{self.taken_until}): check after:, before: and date:")
        filters = Filters(tuple(self.tags), tuple(self.exclude_tags), tuple(self.folders),
                          tuple(self.exclude_folders),
                          self.taken_from.isoformat() if self.taken_from else None,
                          self.taken_until.isoformat() if self.taken_until else None, self.kind)
        return Query(tuple(self.terms), filters)


def _parse_weight(token: _Token) -> tuple[float | None, _Token]:
    match = _WEIGHT.match(token.text)
    if not match:
        return None, token
    weight = float(match.group(1))
    if not 0 < weight <= MAX_WEIGHT:
        raise QueryError(f"column {token.position}: weight {match.group(1)} must be above 0 and at most "
                         f"{MAX_WEIGHT:g}; subtract a term with '-'")
    return weight, token.drop(match.end())


def parse_query(text: str, like: Sequence[str] = ()) -> Query:
    """Parse a query; `like` adds image terms (the CLI's --like PATH). Raises QueryError."""
    builder = _Builder()
    pending_operator: tuple[str, int] | None = None  # a lone "+" or "-" waiting for its term
    for token in _tokenize(text):
        if not token.fully_quoted and token.text in ("+", "-"):
            if pending_operator:
                raise QueryError(f"column {token.position}: two operators in a row "
                                 f"('{pending_operator[0]}' then '{token.text}')")
            builder.end_run()
            pending_operator = (token.text, token.position)
            continue
        sign, explicit = 1.0, pending_operator is not None
        if pending_operator:
            sign = -1.0 if pending_operator[0] == "-" else 1.0
            pending_operator = None
        elif token.text[:1] in "+-" and token.unquoted_prefix(1) and len(token.text) > 1:
            sign, explicit, token = (-1.0 if token.text[0] == "-" else 1.0), True, token.drop(1)

        key_match = _KEY.match(token.text)
        if key_match and token.unquoted_prefix(key_match.end()):
            key, value = key_match.group(1).lower(), token.drop(key_match.end())
            if key == IMAGE_KEY:
                if not value.text:
                    raise QueryError(f"column {token.position}: like: needs a path, e.g. like:~/photo.jpg")
                builder.end_run()
                builder.add_term(IMAGE, value.text, sign, 1.0)
                continue
            if key not in FILTER_KEYS:
                raise QueryError(f"column {token.position}: unknown filter '{key}:' (filters: "
                                 f"{', '.join(k + ':' for k in FILTER_KEYS)}, and like: for images); "
                                 f'to search for the text, quote it: "{token.text}"')
            if not value.text:
                raise QueryError(f"column {token.position}: {key}: needs a value, e.g. "
                                 + {"tag": "tag:family", "folder": "folder:~/Pictures", "is": "is:video"}.get(
                                     key, f"{key}:2023-06"))
            negated = explicit and sign < 0
            if explicit and (sign > 0 or key not in NEGATABLE_KEYS):
                raise QueryError(f"column {token.position}: {key}: filters take no '+'"
                                 + (" or '-'; use after:/before: the other way round" if key not in NEGATABLE_KEYS
                                    else "; write -{key}:VALUE to exclude"))
            builder.end_run()
            builder.add_filter(key, value.text, negated)
            continue

        weight, token = _parse_weight(token)
        if not token.text:
            raise QueryError(f"column {token.position}: empty term" + (" after the weight" if weight else ""))
        if weight is not None:
            weighted_key = _KEY.match(token.text)
            if weighted_key and token.unquoted_prefix(weighted_key.end()) \
                    and weighted_key.group(1).lower() == IMAGE_KEY:
                builder.end_run()
                builder.add_term(IMAGE, token.text[weighted_key.end():], sign, weight)
                continue
        if token.fully_quoted or any(token.quoted):
            builder.end_run()
            builder.add_term(IMAGE if _is_image_path(token.text) else TEXT, token.text, sign, weight or 1.0)
        elif explicit or weight is not None:
            builder.start_run(token.text, sign, weight or 1.0)
        elif builder.words:
            builder.words.append(token.text)
        else:
            builder.start_run(token.text, 1.0, 1.0)
    if pending_operator:
        raise QueryError(f"column {pending_operator[1]}: '{pending_operator[0]}' must be followed by a term")
    for path in like:
        builder.end_run()
        if not path:
            raise QueryError("--like needs a path to a photo")
        builder.add_term(IMAGE, path, 1.0, 1.0)
    query = builder.query()
    if not query.terms and query.filters.empty:
        raise QueryError("empty query: type what to look for, e.g. 'dog on a beach'")
    return query
