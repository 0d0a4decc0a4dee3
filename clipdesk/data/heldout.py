"""Concepts kept out of training in every style, source and language (shared/eval/heldout-emoji-concepts.tsv).

Three rules, from strict to broad:
- an emoji image is held out when its concept's code matches (ignoring FE0F and skin tones, so every
  skin-tone variant goes too) or its concept's label matches;
- an icon (or an emoji-set image that joins no emoji) is held out when its name or one of its synonyms
  contains every word of a held-out label, in any order and number ('pizza-slice', 'thumb-down-outline',
  'cloud-rain' for 'cloud with rain'); an emoji joined to another concept is never dropped this way
  ('woman technologist' stays although 'woman' is held out: it is a concept of its own). This rule is
  broad on purpose ('fire-station' goes for 'station'): such icons leave training, but only those
  named exactly the concept ('thumbs-down-solid') are used to evaluate it;
- a tag equal to a held-out label, in any language, is removed from every image that stays, so no
  caption pairs a held-out phrase with a training image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from clipdesk.data import DataError
from clipdesk.data.emoji_labels import LocalText, base_code
from clipdesk.data.names import compact, word_set

# Glued names ('softicecream') are searched for a held-out label as a substring only when the label
# is long enough not to hide inside unrelated words ('rat' in 'pirate').
_MIN_GLUED_MATCH = 5


def text_key(text: str) -> str:
    """Case- and punctuation-blind form of a label or tag in any script ('Party-Popper' → 'party popper')."""
    return re.sub(r"[\W_]+", " ", text.casefold()).strip()


@dataclass(frozen=True)
class HeldOutConcept:
    hexcode: str
    label: str


class HeldOut:
    def __init__(self, concepts: list[HeldOutConcept]):
        self.concepts = concepts
        self._by_code = {base_code(concept.hexcode): concept for concept in concepts}
        self._by_label = {text_key(concept.label): concept for concept in concepts}
        self._words = [(word_set(concept.label), concept) for concept in concepts]
        self._glued = [(compact(concept.label), concept) for concept in concepts
                       if len(compact(concept.label)) >= _MIN_GLUED_MATCH]
        self._phrases = set(self._by_label)  # grows with each language added

    @classmethod
    def from_tsv(cls, path: Path) -> "HeldOut":
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise DataError(f"cannot read the held-out concepts {path}: {error}") from error
        concepts = []
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
                raise DataError(f"{path}:{number}: expected 'HEXCODE<TAB>label', got {line!r}")
            concepts.append(HeldOutConcept(fields[0].strip(), fields[1].strip()))
        if not concepts:
            raise DataError(f"{path} lists no held-out concepts")
        return cls(concepts)

    def add_translations(self, translations: dict[str, dict[str, LocalText]]) -> None:
        """Also scrub the held-out concepts' labels in these languages from other images' tags."""
        for texts in translations.values():
            for concept in self.concepts:
                local = texts.get(base_code(concept.hexcode))
                if local is not None:
                    self._phrases.add(text_key(local.label))

    def emoji(self, hexcode: str | None, label: str) -> HeldOutConcept | None:
        """The held-out concept an emoji concept is, by code or by label."""
        if hexcode:
            found = self._by_code.get(base_code(hexcode))
            if found is not None:
                return found
        return self._by_label.get(text_key(label))

    def icon(self, names: Iterable[str], glued: bool = False) -> HeldOutConcept | None:
        """The held-out concept an icon shows, judged by its name and synonyms.

        `glued`: the set writes names without separators (fxemoji's 'softicecream'), so a long enough
        label is also looked for inside a one-word name.
        """
        for name in names:
            words = word_set(name)
            for label_words, concept in self._words:
                if label_words and label_words <= words:
                    return concept
            if glued and len(words) == 1:
                glued = compact(name)
                for label, concept in self._glued:
                    if label in glued:
                        return concept
        return None

    @staticmethod
    def names_exactly(name_words: frozenset[str], concept: HeldOutConcept) -> bool:
        """Whether an icon's identity words (style words removed) are the concept's label and no more."""
        return name_words == word_set(concept.label)

    def is_phrase(self, text: str) -> bool:
        return text_key(text) in self._phrases

    def scrub(self, tags: Iterable[str]) -> tuple[str, ...]:
        """The tags without any that names a held-out concept."""
        return tuple(tag for tag in tags if not self.is_phrase(tag))
