"""Text normalisation shared by the joins (slugs) and the held-out matching (word sets)."""

from __future__ import annotations

import re
import unicodedata

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
# Words that carry no identity in a label ("cloud with rain" is the icon "cloud-rain").
STOPWORDS = frozenset({"a", "an", "the", "of", "with", "and", "in", "on", "over", "for", "showing", "to", "at", "by"})


def ascii_fold(text: str) -> str:
    """'piñata' → 'pinata', 'Côte d’Ivoire' → 'Cote d’Ivoire': iconify names are plain ASCII."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def slugify(text: str) -> str:
    """The iconify naming rule: lower case ASCII words joined by '-' ('cat face' → 'cat-face')."""
    return _NON_ALNUM.sub("-", ascii_fold(text).lower()).strip("-")


def compact(text: str) -> str:
    """Slug without separators, for sets that glue words together (fxemoji's 'alienmonster')."""
    return slugify(text).replace("-", "")


def name_words(name: str) -> str:
    """An icon name as words for a caption: 'arrow-left-bold' → 'arrow left bold'."""
    return " ".join(slugify(name).split("-"))


def _stem(word: str) -> str:
    # Plural folding only, so 'thumbs down' meets 'thumb-down'; applied alike to both sides of a match.
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def word_set(text: str) -> frozenset[str]:
    """Identity-bearing words of a label or name, for order-free matching."""
    return frozenset(_stem(word) for word in slugify(text).split("-") if word and word not in STOPWORDS)
