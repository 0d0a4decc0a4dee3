"""Emoji concepts from emojibase-data (labels and tags, many languages) and OpenMoji's extra tags.

A concept is a base emoji (skin-tone variants belong to their base). Iconify emoji sets are joined to
concepts by codepoint where the set has a `chars` map, otherwise by the label slug ('cat-face'), then
by the slug with its separators removed ('alienmonster'), which also tries emojibase's shortcodes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from clipdesk.data import DataError
from clipdesk.data.names import compact, slugify

SKIN_TONES = frozenset({"1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"})
COMPONENT_GROUP = 2  # skin tone and hair swatches: parts of other emoji, not concepts
SHORTCODE_SETS = ("cldr", "emojibase", "github")
_TONE_SUFFIX = re.compile(r"-(light|medium-light|medium|medium-dark|dark)(?:-skin-tone)?$")
_FLAG_FOR = re.compile(r"^flag-for-(?:flag-)?")  # Emoji One's and Noto v1's 'flag-for-belgium' is 'flag: Belgium'
_NUMBER_SUFFIX = re.compile(r"(?<=[a-z])-\d+$")


def normalise_code(hexcode: str) -> str:
    """Upper case, '-'-separated, without FE0F (iconify drops it, emojibase keeps some)."""
    parts = hexcode.replace("_", "-").upper().split("-")
    return "-".join(part.lstrip("0") or "0" for part in parts if part and part != "FE0F")


def base_code(hexcode: str) -> str:
    """The code without skin tones: the identity of the concept a variant shows."""
    return "-".join(part for part in normalise_code(hexcode).split("-") if part not in SKIN_TONES)


@dataclass(frozen=True)
class EmojiConcept:
    hexcode: str            # emojibase's form of the base emoji, e.g. '1F431'
    label: str              # 'cat face'
    tags: tuple[str, ...]
    group: int


@dataclass(frozen=True)
class EmojiVariant:
    """What an image shows: a concept, and the exact label of the variant ('waving hand: dark skin tone')."""
    concept: EmojiConcept
    label: str


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read {path}: {error}") from error


class EmojiIndex:
    """Base emoji concepts of emojibase-data (en), looked up by codepoint or by name."""

    def __init__(self, entries: list[dict], shortcodes: dict[str, list[str]] | None = None):
        self.concepts: dict[str, EmojiConcept] = {}
        self._by_code: dict[str, EmojiVariant] = {}
        self._by_slug: dict[str, EmojiVariant] = {}
        self._by_compact: dict[str, EmojiVariant] = {}
        self._toned: set[str] = set()  # concepts that have skin-tone variants
        for entry in entries:
            if entry.get("group") is None or entry["group"] == COMPONENT_GROUP:
                continue
            concept = EmojiConcept(entry["hexcode"], entry["label"], tuple(entry.get("tags") or ()), entry["group"])
            self.concepts[normalise_code(concept.hexcode)] = concept
            if entry.get("skins"):
                self._toned.add(concept.hexcode)
            for variant in [entry, *(entry.get("skins") or ())]:
                self._add(EmojiVariant(concept, variant["label"]), variant["hexcode"])
        # Shortcodes only fill gaps: a label slug always wins.
        for hexcode, codes in (shortcodes or {}).items():
            variant = self._by_code.get(normalise_code(hexcode))
            if variant is not None:
                for code in codes:
                    self._by_compact.setdefault(compact(code), variant)

    def _add(self, variant: EmojiVariant, hexcode: str) -> None:
        self._by_code[normalise_code(hexcode)] = variant
        self._by_slug.setdefault(slugify(variant.label), variant)
        self._by_compact.setdefault(compact(variant.label), variant)

    def lookup(self, name: str, codepoint: str | None = None) -> EmojiVariant | None:
        """The concept an iconify emoji image shows, or None when it is not a Unicode emoji."""
        if codepoint:
            found = self._by_code.get(normalise_code(codepoint))
            if found is not None:
                return found
        found = self._by_name(name)
        if found is not None:
            return found
        # Names that add a skin tone ('artist-medium-dark', Fluent) or a variant number ('baby-2',
        # Streamline) to a name that joins.
        tone = _TONE_SUFFIX.search(name)
        if tone is not None:
            base = self._by_name(name[:tone.start()])
            if base is not None and base.concept.hexcode in self._toned:
                return EmojiVariant(base.concept, f"{base.concept.label}: {tone.group(1)} skin tone")
        numbered = _NUMBER_SUFFIX.search(name)
        if numbered is not None:
            return self._by_name(name[:numbered.start()])
        return None

    def _by_name(self, name: str) -> EmojiVariant | None:
        name = _FLAG_FOR.sub("flag-", name)
        return self._by_slug.get(slugify(name)) or self._by_compact.get(compact(name))

    def concept_of_code(self, hexcode: str) -> EmojiConcept | None:
        return self.concepts.get(base_code(hexcode))


def load_emoji_index(emojibase_root: Path) -> EmojiIndex:
    entries = _read_json(emojibase_root / "en" / "data.json")
    shortcodes: dict[str, list[str]] = {}
    for name in SHORTCODE_SETS:
        path = emojibase_root / "en" / "shortcodes" / f"{name}.json"
        if path.exists():
            for hexcode, codes in _read_json(path).items():
                shortcodes.setdefault(hexcode, []).extend([codes] if isinstance(codes, str) else codes)
    return EmojiIndex(entries, shortcodes)


@dataclass(frozen=True)
class LocalText:
    label: str
    tags: tuple[str, ...]


def load_translations(emojibase_root: Path, languages: list[str]) -> dict[str, dict[str, LocalText]]:
    """Per language, normalised base code → label and tags. Same hexcodes as English."""
    result = {}
    for language in languages:
        path = emojibase_root / language / "data.json"
        if not path.exists():
            available = sorted(p.name for p in emojibase_root.iterdir() if (p / "data.json").exists())
            raise DataError(f"emojibase-data has no language '{language}' (available: {', '.join(available)})")
        result[language] = {normalise_code(entry["hexcode"]): LocalText(entry["label"], tuple(entry.get("tags") or ()))
                            for entry in _read_json(path) if entry.get("label")}
    return result


@dataclass(frozen=True)
class OpenmojiText:
    annotation: str
    tags: tuple[str, ...]  # OpenMoji's own tags (its copy of the CLDR tags is left to emojibase)


def load_openmoji_texts(openmoji_root: Path) -> dict[str, OpenmojiText]:
    """Normalised code → OpenMoji annotation and extra tags; also names OpenMoji's non-Unicode extras."""
    texts = {}
    for entry in _read_json(openmoji_root / "data" / "openmoji.json"):
        own = [tag.strip() for tag in (entry.get("openmoji_tags") or "").split(",") if tag.strip()]
        if not entry.get("unicode"):  # extras: no emojibase entry, so their CLDR-style tags are needed too
            own += [tag.strip() for tag in (entry.get("tags") or "").split(",") if tag.strip()]
        texts[normalise_code(entry["hexcode"])] = OpenmojiText(entry.get("annotation") or "", tuple(dict.fromkeys(own)))
    return texts
