"""CLIP's byte-level BPE tokenizer, giving the same token ids as OpenAI's reference for any string.

Text is cleaned (ftfy, HTML entities unescaped twice, runs of whitespace collapsed, lowercased), split into
words by CLIP's regular expression, each word's UTF-8 bytes are mapped to printable characters and merged
by byte-pair encoding with the ranks of the bundled merge list.
"""

from __future__ import annotations

import functools
import gzip
import html
from collections.abc import Iterable, Sequence
from pathlib import Path

import ftfy
import numpy as np
import regex

from clipdesk import paths
from clipdesk.errors import ClipdeskError

SOT_TEXT = "<|startoftext|>"
EOT_TEXT = "<|endoftext|>"
END_OF_WORD = "</w>"
CONTEXT_LENGTH = 77
# The vocabulary file holds more merges than CLIP was trained with: it uses the first
# 49152 - 256 bytes - 2 special tokens of them (line 0 is a version header).
MERGE_COUNT = 49152 - 256 - 2

# Special tokens first so that they stay whole; contractions; letter runs; single digits; runs of
# anything else that is not whitespace. Matches OpenAI's pattern, including its IGNORECASE flag.
_WORD_PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)
_WHITESPACE = regex.compile(r"\s+")


@functools.cache
def byte_symbols() -> dict[int, str]:
    """The printable character that stands for each byte value inside BPE symbols, in vocabulary order.

    Printable Latin-1 bytes stand for themselves and come first; the rest (controls, space, soft hyphen...)
    follow in byte order, moved to code points from 256 up, so that no symbol is whitespace or a control.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    moved = (b for b in range(256) if b not in table)
    table.update((b, chr(256 + n)) for n, b in enumerate(moved))
    return table


def clean_text(text: str) -> str:
    """The reference normalisation: ftfy, HTML entities twice, whitespace runs to one space, lowercase."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return _WHITESPACE.sub(" ", text).strip().lower()


def _read_merges(vocab_path: Path) -> list[tuple[str, str]]:
    # Only the first fifth of the file is used: stop decompressing there (saves ~15 ms at start-up).
    chunks: list[bytes] = []
    newlines = 0
    try:
        with gzip.open(vocab_path, "rb") as handle:
            while newlines <= MERGE_COUNT and (chunk := handle.read(1 << 18)):
                chunks.append(chunk)
                newlines += chunk.count(b"\n")
    except (OSError, EOFError) as error:
        raise ClipdeskError(f"cannot read the tokenizer vocabulary {vocab_path}: {error}; reinstall clipdesk") from None
    # The last chunk may end inside a character; that tail lies past the merges and is dropped.
    lines = b"".join(chunks).decode("utf-8", errors="replace").split("\n", MERGE_COUNT + 1)
    merges = [tuple(line.split()) for line in lines[1 : MERGE_COUNT + 1]]
    if len(merges) != MERGE_COUNT or any(len(merge) != 2 for merge in merges):
        raise ClipdeskError(f"{vocab_path} is not a CLIP BPE merge list; reinstall clipdesk")
    return merges  # type: ignore[return-value]


class Tokenizer:
    """Text to CLIP token ids: `tokenizer(["a dog", "a cat"])` -> int64 array (2, 77)."""

    def __init__(self, vocab_path: str | Path | None = None) -> None:
        path = Path(vocab_path) if vocab_path is not None else paths.vocab_path()
        merges = _read_merges(path)
        table = byte_symbols()
        self._byte_to_symbol = [table[b] for b in range(256)]
        self._symbol_to_byte = {symbol: b for b, symbol in table.items()}
        symbols = list(table.values())
        vocab = [*symbols, *(s + END_OF_WORD for s in symbols), *(a + b for a, b in merges), SOT_TEXT, EOT_TEXT]
        self._id_to_token: list[str] = vocab
        # Later ids win on duplicates, as in the reference's dict(zip(vocab, range(...))).
        self._token_to_id: dict[str, int] = {token: i for i, token in enumerate(vocab)}
        self._ranks: dict[tuple[str, str], int] = {merge: rank for rank, merge in enumerate(merges)}
        self._specials = {SOT_TEXT: (self._token_to_id[SOT_TEXT],), EOT_TEXT: (self._token_to_id[EOT_TEXT],)}
        # Words repeat a lot in queries and label sets; bounded so a long-running app cannot grow it forever.
        self._word_ids = functools.lru_cache(maxsize=65536)(self._word_ids_uncached)

    @property
    def sot_token(self) -> int:
        return self._token_to_id[SOT_TEXT]

    @property
    def eot_token(self) -> int:
        return self._token_to_id[EOT_TEXT]

    @property
    def vocab_size(self) -> int:
        return len(self._id_to_token)

    def _merge(self, symbols: list[str]) -> list[str]:
        """Apply merges to one word's symbols, always the lowest-ranked adjacent pair first."""
        ranks = self._ranks
        while len(symbols) > 1:
            best_rank, best = None, None
            for pair in zip(symbols, symbols[1:]):
                rank = ranks.get(pair)
                if rank is not None and (best_rank is None or rank < best_rank):
                    best_rank, best = rank, pair
            if best is None:
                break
            first, second = best
            merged: list[str] = []
            i = 0
            # Merge every occurrence of the pair, left to right, without overlaps.
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return symbols

    def _word_ids_uncached(self, word: str) -> tuple[int, ...]:
        special = self._specials.get(word)
        if special is not None:
            return special
        symbols = [self._byte_to_symbol[b] for b in word.encode("utf-8")]
        symbols[-1] += END_OF_WORD
        return tuple(self._token_to_id[token] for token in self._merge(symbols))

    def encode(self, text: str) -> list[int]:
        """BPE ids of `text`, without the start and end tokens."""
        ids: list[int] = []
        for word in _WORD_PATTERN.findall(clean_text(text)):
            ids.extend(self._word_ids(word))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text for token ids; word ends become spaces, bytes that are not valid UTF-8 become U+FFFD."""
        ids = [int(i) for i in ids]
        if any(not 0 <= i < self.vocab_size for i in ids):
            raise ValueError(f"token ids must lie in 0..{self.vocab_size - 1}")
        symbols = "".join(self._id_to_token[i] for i in ids)
        # "</w>" is spelled with byte symbols too, so it survives the byte mapping and is replaced after.
        data = bytes(self._symbol_to_byte[c] for c in symbols)
        return data.decode("utf-8", errors="replace").replace(END_OF_WORD, " ")

    def __call__(self, texts: str | Sequence[str], context_length: int = CONTEXT_LENGTH) -> np.ndarray:
        """Token id rows [start, ids..., end, 0...] of length `context_length`, one per text.

        Too long texts are cut to `context_length` and keep the end token as their last id.
        """
        if context_length < 2:
            raise ValueError("context_length must leave room for the start and end tokens (>= 2)")
        if isinstance(texts, str):
            texts = [texts]
        result = np.zeros((len(texts), context_length), dtype=np.int64)
        for row, text in zip(result, texts):
            ids = [self.sot_token, *self.encode(text), self.eot_token][:context_length]
            ids[-1] = self.eot_token
            row[: len(ids)] = ids
        return result

    @staticmethod
    def lengths(token_ids: np.ndarray) -> np.ndarray:
        """Each row's length up to and including its end token (the largest id of a row)."""
        return token_ids.argmax(axis=1) + 1


@functools.cache
def get_tokenizer() -> Tokenizer:
    """The shared tokenizer for the bundled vocabulary, loaded on first use."""
    return Tokenizer()
