"""A label classifier over image embeddings: what zero-shot builds from text and few-shot refines.

Scores are cosine-scale: `images @ weights.T + offsets`. Zero-shot weights are the labels' text
embeddings and the offsets are 0; few-shot moves the weights toward the user's examples and sets the
offsets so that the library's average photo keeps its zero-shot scores (see few_shot.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from clipdesk.tagging.calibration import Calibration, open_set_probabilities


@dataclass(frozen=True)
class Predictions:
    labels: tuple[str, ...]
    probabilities: np.ndarray  # (N, L), with `none` each row sums to 1
    none: np.ndarray  # (N,) "none of these"; all 0 for a closed-set classifier

    def best(self) -> tuple[np.ndarray, np.ndarray]:
        """(label index or -1 for "none of these", its confidence) per photo."""
        index = self.probabilities.argmax(axis=1)
        confidence = self.probabilities[np.arange(len(index)), index]
        is_none = self.none >= confidence  # a tie means no label describes the photo better than a generic caption
        return np.where(is_none, -1, index), np.where(is_none, self.none, confidence)

    def ranked(self, row: int, k: int | None = None) -> list[tuple[str, float]]:
        """A photo's labels with confidences, best first."""
        order = np.argsort(-self.probabilities[row], kind="stable")[:k]
        return [(self.labels[i], float(self.probabilities[row, i])) for i in order]


@dataclass(frozen=True)
class LabelClassifier:
    labels: tuple[str, ...]
    weights: np.ndarray  # (L, D) float32
    offsets: np.ndarray  # (L,) float32, cosine units
    background: np.ndarray | None  # (D,) the "none of these" embedding; None: closed set
    calibration: Calibration
    zero_shot_weights: np.ndarray | None = None  # the text embeddings, kept when few-shot changed `weights`

    def scores(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(images, np.float32) @ self.weights.T + self.offsets

    def predict(self, images: np.ndarray) -> Predictions:
        images = np.asarray(images, np.float32)
        none_scores = images @ self.background if self.background is not None else None
        probabilities, none = open_set_probabilities(self.scores(images), none_scores, self.calibration)
        return Predictions(self.labels, probabilities, none)

    def closed_set(self) -> "LabelClassifier":
        return replace(self, background=None)
