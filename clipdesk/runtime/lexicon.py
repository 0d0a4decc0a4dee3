"""A model's lexicon: what to say instead of the words its text tower never read.

clipdesk's own model learned its words from emoji and icon captions only; a label or query with a
word outside them ("penguin") reaches a token embedding no training step ever moved. A package may
carry `lexicon.json`, made with the model from its training captions and a dictionary (data/lexicon.py):
the words the model read (`vocabulary`), and for other words (`entries`) what they are like in words
it did read ("sea bird") and what they mean (WordNet's definition). A text with unknown words is
encoded as the mean of itself, itself with each unknown word replaced by its likenesses, and those
definitions (encoders.TextEncoder.encode). Texts whose words are all known are encoded as they are,
and so is everything for packages without a lexicon (imported CLIP models, which read the web).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from clipdesk.errors import ModelPackageError

LEXICON_FORMAT = 1
WORD = re.compile(r"[^\W_]+")  # "nine o’clock" → nine, o, clock; "T-Rex" → T, Rex
# English plural endings, tried in this order: berries → berry, boxes → box, bicycles → bicycle.
_PLURALS = (("ies", "y"), ("es", ""), ("s", ""))


DEFINITION = "its definition"  # what Lexicon.unread says a word is read as when only its definition is known


def _stems(word: str):
    """The word without a plural ending, each way one could be cut off."""
    for ending, replacement in _PLURALS:
        if word.endswith(ending):
            yield word[: -len(ending)] + replacement


def words_of(text: str) -> list[str]:
    return WORD.findall(text.casefold())


def _judged(word: str) -> bool:
    """Whether the lexicon can say anything about a word: only plain ASCII words are judged. Its entries
    are English, and Chinese or Japanese, written without spaces, have no words to look up (a whole
    run like '香蕉のケーキ' is one 'word' here, which no caption holds as such)."""
    return word.isascii()


@dataclass(frozen=True)
class Entry:
    like: tuple[str, ...]  # phrases of known words, most fitting first
    means: str             # a definition ("" when none)


class Lexicon:
    def __init__(self, vocabulary: set[str], entries: dict[str, Entry | dict], source: str = "lexicon"):
        self.vocabulary = vocabulary
        # As read from the file: an entry becomes an Entry when a text meets its word (building all
        # 60,000 up front doubled the time a `clipdesk search` process spends reading the lexicon).
        self.entries = entries
        self.source = source

    @classmethod
    def read(cls, path: Path) -> "Lexicon":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != LEXICON_FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {LEXICON_FORMAT}")
            if not isinstance(data["entries"], dict):
                raise ValueError("its entries are not an object")
            return cls(set(data["vocabulary"]), data["entries"], str(path))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ModelPackageError(f"{path}: not a readable lexicon ({error}); re-import or re-export the model") \
                from None

    def _lookup(self, word: str) -> Entry:
        entry = self.entries[word]
        if isinstance(entry, dict):
            try:
                entry = self.entries[word] = Entry(tuple(str(like) for like in entry["like"]), str(entry["means"]))
            except (KeyError, TypeError) as error:
                raise ModelPackageError(f"{self.source}: entry {word!r} is damaged ({error!r}); re-import or "
                                        "re-export the model") from None
        return entry

    def _unread_words(self, text: str) -> list[str]:
        return [word for word in dict.fromkeys(words_of(text)) if _judged(word) and word not in self.vocabulary]

    def _reading(self, word: str) -> tuple[tuple[str, ...], str]:
        """What an unread word is read as: its likenesses (its singular, when only a plural ending kept
        it out of the vocabulary) and its definition; both empty when the lexicon has nothing."""
        known = next((stem for stem in _stems(word) if stem in self.vocabulary), None)
        key = next((form for form in (word, *_stems(word)) if form in self.entries), None)
        entry = self._lookup(key) if key is not None else None
        like = (known,) if known else entry.like if entry else ()
        return like, entry.means if entry else ""

    def unread(self, text: str) -> list[tuple[str, str | None]]:
        """The text's words the model never read, each with what it is read as: its first likeness, else
        DEFINITION, else None (no entry: the model can only guess)."""
        found = []
        for word in self._unread_words(text):
            like, means = self._reading(word)
            found.append((word, like[0] if like else DEFINITION if means else None))
        return found

    def unread_in(self, texts) -> list[tuple[str, str | None]]:
        """`unread` over several texts (a query's terms, a label set), each word once."""
        return list(dict.fromkeys(pair for text in texts for pair in self.unread(text)))

    def variants(self, text: str) -> list[str]:
        """The text, then what to encode with it: it with its unknown words replaced, and their meanings."""
        likes: dict[str, tuple[str, ...]] = {}
        meanings: list[str] = []
        for word in self._unread_words(text):
            like, means = self._reading(word)
            if like:
                likes[word] = like
            if means:
                meanings.append(means)
        found = [text]
        for round_ in range(max((len(like) for like in likes.values()), default=0)):
            def replace(match: re.Match, round_=round_) -> str:
                like = likes.get(match.group().casefold())
                return like[min(round_, len(like) - 1)] if like else match.group()
            found.append(WORD.sub(replace, text))
        found.extend(meanings)
        return list(dict.fromkeys(found))


def unread_note(model: str, unread: list[tuple[str, str | None]]) -> str:
    """One line for the user about the words a model never read (Lexicon.unread), as the CLI and the
    status bar show it for queries and label sets:
    "clipdesk-emoji-tiny never learned 'whirlybird' (also read as 'helicopter')"."""
    parts = [f"'{word}' (also read as {like if like == DEFINITION else repr(like)})" if like
             else f"'{word}' (not in its lexicon either: results for it are a guess)" for word, like in unread]
    return f"{model} never learned {', '.join(parts)}"
