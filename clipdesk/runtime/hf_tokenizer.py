"""Tokenizers that ship as a Hugging Face `tokenizer.json` (XLM-R for the multilingual models), run by the
`tokenizers` library: Rust, no torch. The file brings its own normalisation and special tokens."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clipdesk.errors import ModelPackageError


class HFTokenizer:
    """`tokenizer(texts, context_length)` → int64 rows of ids, padded on the right with `pad_id`."""

    def __init__(self, path: Path, pad_id: int) -> None:
        from tokenizers import Tokenizer

        try:
            self._tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # noqa: BLE001 - the library raises plain Exceptions for bad files
            raise ModelPackageError(f"{path}: not a tokenizer.json the tokenizers library can read "
                                    f"({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__})") from None
        self._tokenizer.no_padding()
        self.pad_id = pad_id

    def __call__(self, texts: str | Sequence[str], context_length: int) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        # Truncation keeps the special tokens the file's post-processor adds (start and end) inside the length.
        self._tokenizer.enable_truncation(context_length)
        result = np.full((len(texts), context_length), self.pad_id, dtype=np.int64)
        for row, encoding in zip(result, self._tokenizer.encode_batch(list(texts))):
            row[: len(encoding.ids)] = encoding.ids
        return result

    def lengths(self, token_ids: np.ndarray) -> np.ndarray:
        """Each row's length: padding is only ever at the end, and no real token has the pad id."""
        return np.maximum((token_ids != self.pad_id).sum(axis=1), 1)
