"""Every image the dataset will hold, with its texts, after the licence, held-out and duplicate filters.

An image is an iconify icon. It is an *emoji* when it joins an emojibase concept (then its label,
tags and translations come from emojibase, plus OpenMoji's tags), otherwise an *icon* named by its
set (name, synonyms, the set's categories, the icon package's tags). Identical drawings in several
sets are kept once, so no image can sit in both the train and the val split.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from clipdesk.data.emoji_labels import EmojiIndex, LocalText, OpenmojiText, normalise_code
from clipdesk.data.heldout import HeldOut, HeldOutConcept
from clipdesk.data.icon_tags import IconText
from clipdesk.data.iconify import Icon, IconSetInfo, read_icon_set
from clipdesk.data.licences import licence_verdict
from clipdesk.data.names import name_words, slugify, word_set

# 'fluent-emoji' (the 3D Fluent style) is hidden in collections.json and has no category, but it is an
# emoji style like its flat sibling.
EXTRA_EMOJI_SETS = frozenset({"fluent-emoji"})
# Name words that only say how a family of icons is drawn: trailing ('heart-outline', 'add-24-filled') or,
# in Google's sets, leading ('baseline-alarm', 'twotone-alarm'). Numbers are grid sizes.
STYLE_WORDS = frozenset({"outline", "outlined", "filled", "fill", "solid", "line", "linear", "bold", "light",
                         "thin", "regular", "duotone", "twotone", "sharp", "rounded", "round", "broken", "bulk",
                         "color", "colored", "flat", "mini", "micro", "baseline",
                         "10", "12", "16", "20", "24", "28", "32", "48"})
GRID_SIZES = frozenset(word for word in STYLE_WORDS if word.isdigit())


def is_emoji_set(info: IconSetInfo) -> bool:
    return info.is_emoji or info.prefix in EXTRA_EMOJI_SETS


@dataclass
class ImageItem:
    icon: Icon
    set: IconSetInfo
    kind: str                      # 'emoji' (joins an emojibase concept) or 'icon'
    concept: str                   # 'emoji:1F431' or 'icon:cat': what zero-shot labels are about
    label: str                     # 'cat face' / 'cat'
    variant: str = ""              # 'waving hand: dark skin tone'; for icons the drawing style ('outline')
    tags: tuple[str, ...] = ()
    synonyms: tuple[str, ...] = ()  # other names, as words
    local: dict[str, LocalText] = field(default_factory=dict)  # emoji only: language → label and tags
    heldout: HeldOutConcept | None = None
    heldout_eval: bool = True      # a held-out image clean enough to evaluate its concept with

    @property
    def key(self) -> str:
        return self.icon.key

    @property
    def image_path(self) -> str:
        """Deterministic, relative to the output folder; iconify names are [a-z0-9-]."""
        return f"images/{self.icon.prefix}/{self.icon.name}.png"


@dataclass
class SetReport:
    info: IconSetInfo
    kept: bool
    reason: str
    images: int = 0          # images that made it into a manifest (train, val or held-out)
    emoji: int = 0
    heldout: int = 0
    duplicates: int = 0


@dataclass
class Catalogue:
    items: list[ImageItem]                 # every image to render, held-out ones included
    sets: dict[str, SetReport]
    heldout_by_rule: Counter = field(default_factory=Counter)
    scrubbed_tags: int = 0
    duplicates: int = 0


def content_hash(icon: Icon) -> str:
    text = f"{icon.left:g} {icon.top:g} {icon.width:g} {icon.height:g}\n{icon.body}"
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _style_split(names: list[str]) -> dict[str, tuple[str, str]]:
    """name → (stem, style) for names that belong to a family of drawings of one thing; else (name, '')."""
    stems = {}
    for name in names:
        words = name.split("-")
        start, end = 0, len(words)
        while end - start > 1 and words[end - 1] in STYLE_WORDS:
            end -= 1
        while end - start > 1 and words[start] in STYLE_WORDS:
            start += 1
        style = [word for word in words[:start] + words[end:] if word not in GRID_SIZES]
        stems[name] = ("-".join(words[start:end]), " ".join(style) or " ")  # ' ': a size-only variant
    family = Counter(stem for stem, _ in stems.values())
    return {name: (stem, style.strip()) if stem != name and family[stem] > 1 else (name, "")
            for name, (stem, style) in stems.items()}


def _set_order(info: IconSetInfo, tagged: set[str]) -> tuple:
    # Emoji styles first, then the tagged icon sets, then the rest: the first copy of a drawing wins.
    return (0 if is_emoji_set(info) else 1 if info.prefix in tagged else 2, info.prefix)


def _sample(items: list[Icon], limit: int | None) -> list[Icon]:
    if limit is None or len(items) <= limit:
        return items
    return sorted(items, key=lambda icon: hashlib.sha1(icon.key.encode()).hexdigest())[:limit]


def build_catalogue(iconify_root: Path, sets: dict[str, IconSetInfo], emoji: EmojiIndex, heldout: HeldOut,
                    translations: dict[str, dict[str, LocalText]], openmoji: dict[str, OpenmojiText],
                    icon_texts: dict[str, dict[str, IconText]], share_alike: bool = True,
                    max_per_set: int | None = None, progress=None) -> Catalogue:
    reports: dict[str, SetReport] = {}
    kept_sets = []
    for prefix, info in sorted(sets.items()):
        verdict = licence_verdict(info.spdx, share_alike)
        reports[prefix] = SetReport(info, verdict.keep, verdict.reason)
        if verdict.keep:
            kept_sets.append(info)
    kept_sets.sort(key=lambda info: _set_order(info, set(icon_texts)))
    if not share_alike:
        openmoji = {}  # OpenMoji's texts are CC-BY-SA too

    catalogue = Catalogue([], reports)
    by_hash: dict[str, ImageItem] = {}
    names_by_hash: dict[str, list[str]] = defaultdict(list)
    for number, info in enumerate(kept_sets):
        if progress is not None:
            progress.update(number, len(kept_sets), set=info.prefix)
        icons = _sample(read_icon_set(iconify_root / "json" / f"{info.prefix}.json", info), max_per_set)
        styles = _style_split([icon.name for icon in icons])
        texts = icon_texts.get(info.prefix, {})
        for icon in icons:
            digest = content_hash(icon)
            names_by_hash[digest] += [icon.name, *icon.synonyms]
            if digest in by_hash:
                reports[info.prefix].duplicates += 1
                catalogue.duplicates += 1
                _add_synonym(by_hash[digest], info, name_words(styles[icon.name][0]))
                continue
            item = (_emoji_item(icon, info, emoji, translations, openmoji) if is_emoji_set(info) else None)
            item = item or _icon_item(icon, info, styles[icon.name], texts.get(icon.name)
                                      or texts.get(styles[icon.name][0]), openmoji)
            by_hash[digest] = item
    if progress is not None:
        progress.update(len(kept_sets), len(kept_sets))

    for digest, item in by_hash.items():
        _judge_heldout(item, names_by_hash[digest], heldout, catalogue)
        catalogue.items.append(item)
    count_images(reports, catalogue.items)
    return catalogue


def count_images(reports: dict[str, SetReport], items: list[ImageItem]) -> None:
    """Set each report's image counts to those of `items` (recounted once the final image list is known)."""
    for report in reports.values():
        report.images = report.emoji = report.heldout = 0
    for item in items:
        report = reports[item.icon.prefix]
        report.images += 1
        report.emoji += item.kind == "emoji"
        report.heldout += item.heldout is not None


def _add_synonym(kept: ImageItem, info: IconSetInfo, words: str) -> None:
    """A second name for the same drawing in the same set ('add' and 'plus' in Font Awesome) is a synonym.

    Names from other sets are not: one set's 'food' may be another's 'pizza' (those still count for the
    held-out check, through `names_by_hash`)."""
    same_set = kept.icon.prefix == info.prefix and kept.kind == "icon"
    if same_set and words != kept.label and words not in kept.synonyms:
        kept.synonyms += (words,)


def _emoji_item(icon: Icon, info: IconSetInfo, emoji: EmojiIndex, translations, openmoji) -> ImageItem | None:
    variant = emoji.lookup(icon.name, icon.codepoint)
    if variant is None:
        return None
    concept = variant.concept
    code = normalise_code(concept.hexcode)
    # The variant's own OpenMoji entry, else the base emoji's (skin-tone entries carry no tags).
    extra = [text for text in (openmoji.get(normalise_code(icon.codepoint or "")), openmoji.get(code)) if text]
    tags = tuple(dict.fromkeys([*concept.tags, *next((text.tags for text in extra if text.tags), ())]))
    local = {language: texts[code] for language, texts in translations.items() if code in texts}
    return ImageItem(icon=icon, set=info, kind="emoji", concept=f"emoji:{concept.hexcode}", label=concept.label,
                     variant=variant.label if variant.label != concept.label else "", tags=tags, local=local,
                     synonyms=tuple(name_words(name) for name in icon.synonyms))


def _icon_item(icon: Icon, info: IconSetInfo, style: tuple[str, str], text: IconText | None,
               openmoji: dict[str, OpenmojiText]) -> ImageItem:
    stem, drawn = style
    label = name_words(stem)
    tags = [category.lower() for category in icon.categories]
    synonyms = [name_words(name) for name in icon.synonyms]
    if text is not None:
        tags += text.tags
        synonyms += [name_words(name) for name in text.synonyms]
    extra = openmoji.get(normalise_code(icon.codepoint)) if icon.codepoint else None
    if extra is not None:  # OpenMoji's own drawings outside Unicode ('3d printer'): named by OpenMoji
        label = extra.annotation or label
        tags += extra.tags
    # Case-blind: mdi's tag 'Animal' and iconify's category 'animal' are one tag.
    tags = tuple({tag.lower(): tag for tag in reversed(tags) if tag and tag.lower() != label.lower()}.values())[::-1]
    synonyms = tuple(dict.fromkeys(name for name in synonyms if name and name != label))
    return ImageItem(icon=icon, set=info, kind="icon", concept=f"icon:{slugify(label)}", label=label,
                     variant=drawn, tags=tags, synonyms=synonyms)


def _judge_heldout(item: ImageItem, all_names: list[str], heldout: HeldOut, catalogue: Catalogue) -> None:
    """Mark held-out images; scrub held-out phrases from the tags of the rest."""
    if item.kind == "emoji":
        code = item.concept.split(":", 1)[1]
        item.heldout = heldout.emoji(code, item.label)
        rule = "emoji concept (code or label)"
    else:
        # Every name any copy of this drawing had, so a duplicate cannot smuggle a held-out image in.
        item.heldout = heldout.icon([item.label, *item.synonyms, *all_names], glued=is_emoji_set(item.set))
        rule = "icon name contains a held-out label"
        if item.heldout is not None:
            # Brand logos share names with things ('razor') but never show them: no use for evaluation.
            names = [item.label, *item.synonyms]
            item.heldout_eval = item.set.category != "Logos" and any(
                HeldOut.names_exactly(word_set(name) - STYLE_WORDS, item.heldout) for name in names)
    if item.heldout is not None:
        catalogue.heldout_by_rule[rule] += 1
        return
    # An emoji may carry another name that names a held-out concept (an alias): it must not reach a caption.
    item.synonyms = tuple(synonym for synonym in item.synonyms if heldout.icon([synonym]) is None)
    before = len(item.tags) + sum(len(local.tags) for local in item.local.values())
    item.tags = heldout.scrub(item.tags)
    item.local = {language: LocalText(local.label, heldout.scrub(local.tags)) for language, local in item.local.items()}
    catalogue.scrubbed_tags += before - len(item.tags) - sum(len(local.tags) for local in item.local.values())

