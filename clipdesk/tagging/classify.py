"""Classifying image files straight from disk, without a library (`clipdesk classify`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from clipdesk.errors import ClipdeskError
from clipdesk.library.pathnames import display_path
from clipdesk.progress import Progress
from clipdesk.tagging.classifier import LabelClassifier

BATCH_SIZE = 32


@dataclass
class FileResult:
    path: str
    ranked: list[tuple[str, float]]  # labels with confidences, best first (top k)
    none: float | None  # "none of these"; None for a closed-set run
    error: str | None = None

    @property
    def best(self) -> str | None:
        """The winning label, or None when "none of these" beats every label (or the file failed)."""
        if self.error or not self.ranked:
            return None
        label, score = self.ranked[0]
        return None if self.none is not None and self.none > score else label

    def to_dict(self) -> dict:
        data = {"path": self.path,
                "labels": [{"label": label, "score": round(score, 6)} for label, score in self.ranked]}
        if self.none is not None:
            data["none"] = round(self.none, 6)
        return data


def find_photo_files(paths: Iterable[str]) -> list[str]:
    """Files as given, and the photo files below folders (by extension, hidden names skipped), in order."""
    from clipdesk.library.scanner import supported_extensions

    extensions = supported_extensions()
    found: list[str] = []
    for path in paths:
        path = os.path.expanduser(path)
        if os.path.isfile(path):
            found.append(path)
        elif os.path.isdir(path):
            for folder, subfolders, files in os.walk(path):
                subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
                found += [os.path.join(folder, name) for name in sorted(files) if not name.startswith(".")
                          and os.path.splitext(os.fsencode(name))[1].lower() in extensions]
        else:
            raise ClipdeskError(f"{display_path(path)}: no such file or folder")
    return list(dict.fromkeys(found))


def _load(path: str, size: int):
    from clipdesk.runtime.preprocess import load_image

    try:
        return load_image(path, draft_size=size), None
    except ClipdeskError as exc:
        return None, str(exc)


def classify_files(model, files: Sequence[str], classifier: LabelClassifier, *, top_k: int | None = None,
                   batch_size: int = BATCH_SIZE, workers: int | None = None,
                   progress: Progress | None = None) -> list[FileResult]:
    """One result per file in order; a file that cannot be read gets its error instead of labels."""
    progress = progress or Progress()
    size = model.package.manifest.image_resolution
    results: list[FileResult] = []
    with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 2)) as pool:
        for start in range(0, len(files), batch_size):
            if progress.cancelled:
                break
            part = files[start:start + batch_size]
            loaded = list(pool.map(lambda path: _load(path, size), part))
            images = [image for image, _ in loaded if image is not None]
            embeddings = model.image.encode_images(images) if images else np.zeros((0, 1), np.float32)
            predictions = classifier.predict(embeddings) if images else None
            row = 0
            for path, (image, error) in zip(part, loaded):
                if image is None:
                    results.append(FileResult(path, [], None, error))
                    continue
                none = float(predictions.none[row]) if classifier.background is not None else None
                results.append(FileResult(path, predictions.ranked(row, top_k), none))
                row += 1
            progress.update(len(results), len(files))
    return results
