"""Fitting a model's tagging calibration on labelled held-out images, and measuring how honest it is.

A tagging episode is one photo against one label set: the photo's cosine scores with the set's labels,
its cosine with the "none of these" background, and the right answer (a label's index, or -1 when the
photo shows none of them, as most of a library does for any given set). Calibration (calibration.py)
turns the scores into confidences with two numbers, a temperature and a bias added to the background's
score; `fit` chooses them to minimise the negative log-likelihood of the right answers (temperature
scaling, Guo et al. 2017, with the open-set bias beside it).

`expected_calibration_error` is the usual measure: the confidences of the chosen answers are put in
equal-width bins, and the gap between each bin's mean confidence and its accuracy is averaged, weighted
by how many answers fall in the bin. 0 is perfectly honest; "shown at about 90 %, right about 90 % of
the time" is a small ECE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clipdesk.tagging.calibration import MAX_TEMPERATURE, Calibration, open_set_probabilities

BINS = 15


@dataclass(frozen=True)
class Episodes:
    """Episodes of one label-set size K: scores (E, K), background scores (E,), answers (E,) (-1: none)."""

    scores: np.ndarray
    none_scores: np.ndarray
    answers: np.ndarray


def make_episodes(image_vectors: np.ndarray, image_labels: np.ndarray, label_vectors: np.ndarray,
                  background: np.ndarray, *, size: int, count: int, none_share: float,
                  rng: np.random.Generator) -> Episodes:
    """`count` random label sets of `size` labels over images of known label (an index into label_vectors):
    in a `none_share` of them the image's own label is left out of the set (the right answer is "none")."""
    cosines = image_vectors @ label_vectors.T  # (N, all labels)
    none_scores = image_vectors @ background
    n_labels = len(label_vectors)
    rows = rng.integers(0, len(image_vectors), count)
    scores, answers = np.empty((count, size)), np.empty(count, np.int64)
    for episode, row in enumerate(rows):
        own = int(image_labels[row])
        others = rng.choice(np.delete(np.arange(n_labels), own), size, replace=False)
        if rng.random() >= none_share:
            slot = int(rng.integers(0, size))
            others[slot] = own
            answers[episode] = slot
        else:
            answers[episode] = -1
        scores[episode] = cosines[row, others]
    return Episodes(scores, none_scores[rows], answers)


def outcome_probabilities(episodes: Episodes, calibration: Calibration) -> np.ndarray:
    """(E, K + 1): each label's confidence, then "none of these"."""
    labels, none = open_set_probabilities(episodes.scores, episodes.none_scores, calibration)
    return np.concatenate([labels, none[:, None]], axis=1)


def negative_log_likelihood(episodes: Sequence[Episodes], calibration: Calibration) -> float:
    total, count = 0.0, 0
    for group in episodes:
        probabilities = outcome_probabilities(group, calibration)
        column = np.where(group.answers < 0, probabilities.shape[1] - 1, group.answers)
        total -= np.log(np.clip(probabilities[np.arange(len(column)), column], 1e-12, None)).sum()
        count += len(column)
    return total / max(count, 1)


def fit(episodes: Sequence[Episodes]) -> Calibration:
    """The temperature and background bias with the least negative log-likelihood: a coarse grid, then two
    rounds of finer grids around the best point (the likelihood is smooth and has one basin here)."""
    temperatures = np.geomspace(1.0, MAX_TEMPERATURE, 41)
    biases = np.linspace(-0.2, 0.2, 41)
    best = None
    for _ in range(3):
        for temperature in temperatures:
            for bias in biases:
                candidate = Calibration(float(temperature), float(bias))
                value = negative_log_likelihood(episodes, candidate)
                if best is None or value < best[0]:
                    best = (value, candidate)
        t, b = best[1].temperature, best[1].none_margin
        t_step, b_step = temperatures[1] / temperatures[0], biases[1] - biases[0]
        temperatures = np.clip(np.geomspace(t / t_step, t * t_step, 11), 0.5, MAX_TEMPERATURE)
        biases = np.linspace(b - b_step, b + b_step, 11)
    return best[1]


def chosen(episodes: Episodes, calibration: Calibration) -> tuple[np.ndarray, np.ndarray]:
    """(confidence of the answer shown, whether it is right) per episode, as the app shows them: the best
    label, or "none of these" when it is at least as likely (Predictions.best)."""
    probabilities = outcome_probabilities(episodes, calibration)
    labels, none = probabilities[:, :-1], probabilities[:, -1]
    best = labels.argmax(axis=1)
    confidence = labels[np.arange(len(best)), best]
    is_none = none >= confidence
    answer = np.where(is_none, -1, best)
    return np.where(is_none, none, confidence), answer == episodes.answers


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS) -> float:
    table = reliability(confidence, correct, bins)
    return float(sum(n * abs(mean - accuracy) for _, n, mean, accuracy in table) / max(len(confidence), 1))


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS
                ) -> list[tuple[float, int, float, float]]:
    """(bin's lower edge, answers in it, their mean confidence, their accuracy) for every non-empty bin."""
    confidence, correct = np.asarray(confidence, np.float64), np.asarray(correct, bool)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    table = []
    for b in range(bins):
        inside = index == b
        if inside.any():
            table.append((b / bins, int(inside.sum()), float(confidence[inside].mean()), float(correct[inside].mean())))
    return table
