"""Tags and synonyms for icons, from the icon packages' own metadata, keyed by iconify set and icon name.

The images come from @iconify/json (one rendering path for every set); these packages only add words:
    mdi          meta.json: aliases and tag groups ('Animal', 'Account / User')
    tabler       icons.json: tags and category; iconify names the filled style '<name>-filled'
    lucide       tags.json: tags
    Font Awesome metadata/icon-families.json: search terms and alias names
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from clipdesk.data import DataError


@dataclass(frozen=True)
class IconText:
    tags: tuple[str, ...] = ()
    synonyms: tuple[str, ...] = ()


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read {path}: {error}") from error


def _unique(words) -> tuple[str, ...]:
    # Some tags are numbers in the JSON (tabler tags "2" on "number-2").
    return tuple(dict.fromkeys(str(word).strip() for word in words if str(word).strip()))


def mdi_texts(root: Path) -> dict[str, IconText]:
    return {entry["name"]: IconText(_unique(entry.get("tags") or ()), _unique(entry.get("aliases") or ()))
            for entry in _read_json(root / "meta.json") if not entry.get("deprecated")}


def tabler_texts(root: Path) -> dict[str, IconText]:
    texts = {}
    for name, entry in _read_json(root / "icons.json").items():
        text = IconText(_unique([*(entry.get("tags") or ()), entry.get("category") or ""]))
        texts[name] = text
        texts[f"{name}-filled"] = text
    return texts


def lucide_texts(root: Path) -> dict[str, IconText]:
    return {name: IconText(_unique(tags)) for name, tags in _read_json(root / "tags.json").items()}


def fontawesome_texts(root: Path) -> dict[str, IconText]:
    texts = {}
    for name, entry in _read_json(root / "metadata" / "icon-families.json").items():
        terms = (entry.get("search") or {}).get("terms") or ()
        aliases = ((entry.get("aliases") or {}).get("names")) or ()
        texts[name] = IconText(_unique(terms), _unique(aliases))
    return texts


# Which iconify sets each package's metadata describes (same icon names).
TAGGED_SETS = {
    "mdi": ("mdi", mdi_texts),
    "tabler": ("tabler", tabler_texts),
    "lucide": ("lucide", lucide_texts),
    "fa7-solid": ("fontawesome", fontawesome_texts),
    "fa7-regular": ("fontawesome", fontawesome_texts),
    "fa7-brands": ("fontawesome", fontawesome_texts),
}


def load_icon_texts(package_roots: dict[str, Path]) -> dict[str, dict[str, IconText]]:
    """iconify prefix → icon name → texts; each package's metadata is read once."""
    by_package: dict[str, dict[str, IconText]] = {}
    result = {}
    for prefix, (package, reader) in TAGGED_SETS.items():
        if package not in by_package:
            by_package[package] = reader(package_roots[package])
        result[prefix] = by_package[package]
    return result
