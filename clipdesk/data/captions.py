"""Several phrasings per image, from its label, variant, synonyms and tags.

The trainer picks one caption per image per step, so the model meets a concept as a bare label ("cat
face"), in sentences ("an emoji of a cat face", "a cat face icon"), with its style named ("a Noto style
emoji of a cat face") and through its tags alone ("kitten, pet, animal"). Tag picks are seeded by the
image key, so a rebuild writes the same captions.
"""

from __future__ import annotations

import random
import re

from clipdesk.data.catalogue import ImageItem, is_emoji_set

# How captions name each emoji style: collections.json names ('Emoji One (Colored)') read badly in a sentence.
EMOJI_STYLES = {
    "openmoji": "OpenMoji", "twemoji": "Twemoji", "noto": "Noto", "noto-v1": "old Noto",
    "fluent-emoji": "Fluent 3D", "fluent-emoji-flat": "Fluent flat",
    "fluent-emoji-high-contrast": "Fluent high contrast",
    "emojione": "Emoji One", "emojione-monotone": "Emoji One monotone", "emojione-v1": "old Emoji One",
    "fxemoji": "Firefox OS", "streamline-emojis": "Streamline",
}
MAX_TAGS = 3
I18N_CAPTIONS = 2


# Vowel letters that sound like consonants: 'a user', 'a unicorn', 'a one-way sign', 'a euro'.
_CONSONANT_SOUND = re.compile(r"^(u[bcdfghjklmnprstvwxz][aeiou]|uni|eu|one\b|once)", re.IGNORECASE)


def article(phrase: str) -> str:
    return "an" if phrase[:1].lower() in "aeiou" and not _CONSONANT_SOUND.match(phrase) else "a"


def with_article(phrase: str) -> str:
    return f"{article(phrase)} {phrase}"


def readable(label: str) -> str:
    """Emojibase's 'flag: Germany' and 'waving hand: dark skin tone' as caption text."""
    if label.startswith("flag: "):
        return f"flag of {label[6:]}"
    return label.replace(": ", ", ")


def style_name(item: ImageItem) -> str:
    if item.icon.prefix in EMOJI_STYLES:
        return EMOJI_STYLES[item.icon.prefix]
    return re.sub(r"\s+", " ", re.sub(r"\bEmojis?\b|[()]", "", item.set.name)).strip() or item.set.name


def _pick(rng: random.Random, tags: tuple[str, ...], count: int) -> list[str]:
    return rng.sample(list(tags), min(count, len(tags)))


def _unique(captions) -> list[str]:
    return list(dict.fromkeys(caption.strip() for caption in captions if caption and caption.strip()))


def emoji_captions(item: ImageItem) -> list[str]:
    rng = random.Random(item.key)
    shown = readable(item.variant or item.label)  # what the picture shows, skin tone included
    style = style_name(item)
    captions = [
        shown,
        f"an emoji of {with_article(shown)}",
        f"{with_article(shown)} icon",
        f"{with_article(style)} style emoji of {with_article(shown)}",
        f"{shown} emoji",
    ]
    if item.variant:
        captions.append(f"an emoji of {with_article(readable(item.label))}")
    captions += [f"an emoji of {with_article(synonym)}" for synonym in item.synonyms[:1]]
    captions += _tag_captions(rng, shown, item.tags, "emoji")
    return _unique(captions)


def icon_captions(item: ImageItem) -> list[str]:
    rng = random.Random(item.key)
    noun = "emoji" if is_emoji_set(item.set) else "icon"
    label = item.label
    captions = [
        label,
        f"{with_article(label)} {noun}",
        f"an {noun} of {with_article(label)}" if noun == "icon" else f"an emoji of {with_article(label)}",
        f"{with_article(label)} {noun}, {style_name(item)} style",
    ]
    if item.variant:
        captions.append(f"{with_article(item.variant)} {label} {noun}")
    captions += [f"{with_article(synonym)} {noun}" for synonym in item.synonyms[:2]]
    captions += _tag_captions(rng, label, item.tags, noun)
    return _unique(captions)


def _tag_captions(rng: random.Random, label: str, tags: tuple[str, ...], noun: str) -> list[str]:
    if not tags:
        return []
    captions = [f"{label}, {', '.join(_pick(rng, tags, 2))}",
                f"{with_article(label)} {noun}: {', '.join(_pick(rng, tags, MAX_TAGS))}"]
    if len(tags) >= 2:
        captions.append(", ".join(_pick(rng, tags, MAX_TAGS)))
    return captions


def captions_for(item: ImageItem) -> list[str]:
    return emoji_captions(item) if item.kind == "emoji" else icon_captions(item)


def local_captions(item: ImageItem) -> dict[str, list[str]]:
    """Per language: the emoji's label alone and with a few of its tags (emojibase has no sentences)."""
    rng = random.Random(item.key)
    result = {}
    for language, text in sorted(item.local.items()):
        captions = [text.label]
        if text.tags:
            captions.append(f"{text.label}, {', '.join(_pick(rng, text.tags, MAX_TAGS))}")
        result[language] = _unique(captions)[:I18N_CAPTIONS]
    return result
