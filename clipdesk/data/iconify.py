"""Reading @iconify/json: the set list (collections.json), each set's icons and aliases, and the SVG
document for one icon, following the IconifyJSON format (https://iconify.design/docs/types/iconify-json.html).

An alias that only renames its parent is a synonym of the parent, not another image; an alias that
flips, rotates or re-crops its parent (e.g. 'arrow-right' as 'arrow-left' flipped) is an image of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from clipdesk.data import DataError

# IconifyJSON defaults for dimensions that neither the icon nor the set give.
DEFAULT_BOX = {"left": 0.0, "top": 0.0, "width": 16.0, "height": 16.0}
BOX_KEYS = tuple(DEFAULT_BOX)


@dataclass(frozen=True)
class IconSetInfo:
    """One entry of collections.json."""
    prefix: str
    name: str
    category: str
    spdx: str
    licence_title: str
    licence_url: str
    author: str
    author_url: str
    total: int
    palette: bool  # True: colours are part of the design; False: monochrome, drawn with currentColor

    @property
    def is_emoji(self) -> bool:
        return self.category == "Emoji"


@dataclass(frozen=True)
class Icon:
    """One image of a set: the body with any alias transform already applied, and its box."""
    prefix: str
    name: str
    body: str
    left: float
    top: float
    width: float
    height: float
    synonyms: tuple[str, ...] = ()      # aliases that only rename this icon
    categories: tuple[str, ...] = ()    # the set's own categories that list this icon or a synonym
    codepoint: str | None = None        # from the set's `chars` map (emoji sets name by codepoint there)

    @property
    def key(self) -> str:
        return f"{self.prefix}:{self.name}"


def read_collections(iconify_root: Path) -> dict[str, IconSetInfo]:
    path = iconify_root / "collections.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read {path}: {error}") from error
    sets = {}
    for prefix, entry in raw.items():
        licence = entry.get("license") or {}
        author = entry.get("author") or {}
        sets[prefix] = IconSetInfo(
            prefix=prefix, name=entry.get("name", prefix), category=entry.get("category") or "",
            spdx=licence.get("spdx") or "", licence_title=licence.get("title") or "",
            licence_url=licence.get("url") or "", author=author.get("name") or "",
            author_url=author.get("url") or "", total=int(entry.get("total") or 0),
            palette=bool(entry.get("palette")))
    return sets


@dataclass
class _Resolved:
    """An icon or alias flattened onto its root icon: body, box and the summed transform."""
    body: str
    box: dict = field(default_factory=dict)
    rotate: int = 0
    h_flip: bool = False
    v_flip: bool = False


def _transform_of(entry: dict) -> tuple[int, bool, bool]:
    return int(entry.get("rotate", 0)), bool(entry.get("hFlip")), bool(entry.get("vFlip"))


def _changes_image(alias: dict) -> bool:
    return any(key in alias for key in ("rotate", "hFlip", "vFlip", *BOX_KEYS))


def apply_transform(body: str, box: dict, rotate: int, h_flip: bool, v_flip: bool) -> tuple[str, dict]:
    """Bake flips and quarter turns into the body, as @iconify/utils' iconToSVG does (flip, then rotate).

    Returns the new body and box; a quarter turn swaps the box's width and height.
    """
    box = dict(box)
    transforms: list[str] = []
    rotation = rotate
    if h_flip:
        if v_flip:
            rotation += 2
        else:
            transforms.append(f"translate({_num(box['width'] + box['left'])} {_num(-box['top'])})")
            transforms.append("scale(-1 1)")
            box["top"] = box["left"] = 0.0
    elif v_flip:
        transforms.append(f"translate({_num(-box['left'])} {_num(box['height'] + box['top'])})")
        transforms.append("scale(1 -1)")
        box["top"] = box["left"] = 0.0
    rotation %= 4
    if rotation == 1:
        centre = box["height"] / 2 + box["top"]
        transforms.insert(0, f"rotate(90 {_num(centre)} {_num(centre)})")
    elif rotation == 2:
        transforms.insert(0, f"rotate(180 {_num(box['width'] / 2 + box['left'])} "
                             f"{_num(box['height'] / 2 + box['top'])})")
    elif rotation == 3:
        centre = box["width"] / 2 + box["left"]
        transforms.insert(0, f"rotate(-90 {_num(centre)} {_num(centre)})")
    if rotation % 2 == 1:
        box["left"], box["top"] = box["top"], box["left"]
        box["width"], box["height"] = box["height"], box["width"]
    if transforms:
        body = f'<g transform="{" ".join(transforms)}">{body}</g>'
    return body, box


def _num(value: float) -> str:
    return f"{value:g}"


def read_icon_set(path: Path, info: IconSetInfo) -> list[Icon]:
    """Every visible image of one set. Hidden icons (kept by iconify for old names) are skipped."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read icon set {path}: {error}") from error
    icons: dict = data.get("icons") or {}
    aliases: dict = data.get("aliases") or {}
    set_box = {key: float(data.get(key, default)) for key, default in DEFAULT_BOX.items()}

    def resolve(name: str, depth: int = 0) -> _Resolved | None:
        if depth > 16:  # a loop of aliases: broken data, not worth failing the whole set
            return None
        if name in icons:
            entry = icons[name]
            box = {key: float(entry.get(key, set_box[key])) for key in BOX_KEYS}
            rotate, h_flip, v_flip = _transform_of(entry)
            return _Resolved(entry["body"], box, rotate, h_flip, v_flip)
        alias = aliases.get(name)
        if alias is None or "parent" not in alias:
            return None
        parent = resolve(alias["parent"], depth + 1)
        if parent is None:
            return None
        rotate, h_flip, v_flip = _transform_of(alias)
        box = {key: float(alias.get(key, parent.box[key])) for key in BOX_KEYS}
        return _Resolved(parent.body, box, parent.rotate + rotate, parent.h_flip != h_flip,
                         parent.v_flip != v_flip)

    def image_owner(name: str, depth: int = 0) -> str | None:
        """The icon or image-changing alias that a pure rename ultimately shows."""
        if depth > 16:
            return None
        if name in icons:
            return name
        alias = aliases.get(name)
        if alias is None or "parent" not in alias:
            return None
        return name if _changes_image(alias) else image_owner(alias["parent"], depth + 1)

    image_names = [name for name, entry in icons.items() if not entry.get("hidden")]
    image_names += [name for name, alias in aliases.items() if _changes_image(alias) and not alias.get("hidden")]
    synonyms: dict[str, list[str]] = {}
    for name, alias in aliases.items():
        if not _changes_image(alias) and not alias.get("hidden"):
            owner = image_owner(name)
            if owner is not None:
                synonyms.setdefault(owner, []).append(name)

    categories: dict[str, list[str]] = {}
    for category, members in (data.get("categories") or {}).items():
        for member in members:
            owner = image_owner(member)
            if owner is not None:
                categories.setdefault(owner, []).append(category)
    codepoints: dict[str, str] = {}
    chars = (data.get("chars") or {}).items()
    # A code given to the image's own name wins over one given to a rename of it.
    for code, member in sorted(chars, key=lambda item: item[1] not in icons):
        owner = image_owner(member)
        if owner is not None:
            codepoints.setdefault(owner, code.upper())

    result = []
    for name in image_names:
        resolved = resolve(name)
        if resolved is None:
            continue
        body, box = apply_transform(resolved.body, resolved.box, resolved.rotate, resolved.h_flip, resolved.v_flip)
        result.append(Icon(prefix=info.prefix, name=name, body=body, left=box["left"], top=box["top"],
                           width=box["width"], height=box["height"],
                           synonyms=tuple(sorted(synonyms.get(name, ()))),
                           categories=tuple(dict.fromkeys(categories.get(name, ()))),
                           codepoint=codepoints.get(name)))
    return result


def svg_document(icon: Icon, size: int, colour: str = "#000000", inset: float = 0.0) -> str:
    """A square SVG of `size` px showing the icon centred, with currentColor set to `colour`.

    Non-square icons are centred on a square canvas (no stretching). `inset` crops that fraction of
    the box away on every side, for sets that draw with a wide built-in margin (OpenMoji).
    """
    side = max(icon.width, icon.height)
    left = icon.left - (side - icon.width) / 2 + side * inset
    top = icon.top - (side - icon.height) / 2 + side * inset
    side *= 1 - 2 * inset
    body = icon.body.replace("currentColor", colour)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'width="{size}" height="{size}" viewBox="{_num(left)} {_num(top)} {_num(side)} {_num(side)}">'
            f"{body}</svg>")
