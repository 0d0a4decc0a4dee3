"""Learning from the user's confirmed examples without ever forgetting the text prior.

The method: a linear probe whose weights start at the zero-shot text embeddings and are pulled back
toward them, fitted by maximum a posteriori estimation:

    minimise  sum_i CE(T * s(x_i), y_i)  +  (strength * T^2 / 2) * ||W - W_text||^2
    where     s_j(x) = w_j . (x - mu) + w_text_j . mu            (mu: the library's mean embedding)

- With no examples the minimum is W = W_text: exactly zero-shot. Each example moves the weights only
  as far as its evidence outweighs the prior, so a single odd photo cannot swamp a good text
  embedding; with many examples the data term dominates and the probe behaves like a trained one.
- Scores are taken around the library's mean embedding and each label keeps its zero-shot score for
  the mean photo. The loss only ever sees positives of the labels that have examples, so a probe that
  also learns per-label biases lets those labels gain on every photo and take photos from the labels
  without examples (in exploratory runs it fell below zero-shot overall when half the labels had
  examples); with the anchor, overall accuracy stays above zero-shot in that case.
- Given the library's other photos, the labels that learned are then lowered together, by one common
  offset, until the labels without examples win as many of those photos as they did at zero-shot.
  Examples sharpen and strengthen the scores of their labels, so on real embeddings (the bundled model,
  half of 128 labels with examples) those labels took every photo of the other labels, which fell from
  9 % to 0 % correct; the examples say nothing about how common the labels without examples are, so
  their share of the library is kept. With every label (or none) given examples nothing changes.
- "None of these" takes part with its zero-shot score, so confirmed examples also teach their label to
  beat the background.
- The objective is convex and smooth; L-BFGS solves it in about 20 iterations.

Why not the alternatives: a plain linear probe (the paper's) or image prototypes ignore the text and
are far below zero-shot with one or two examples per label, and cannot name labels that have none; a
Gaussian (LDA) likelihood added to the zero-shot logits was strong with a large balanced library but
fell far below zero-shot with one example per label or a small library (a single photo's quirks look
like strong evidence after whitening). Figures: benchmarks/tagging_kshot.py and docs/tagging.md.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from clipdesk.tagging.classifier import LabelClassifier
from clipdesk.tagging.lbfgs import minimize

# Prior strength in units of temperature^2. In exploratory runs on synthetic embeddings 0.001, 0.003 and
# 0.01 all stayed at or above zero-shot (0.001 learning fastest, 0.01 slowest); 0.003 is the middle.
# To revisit with the default model's embeddings (benchmarks/tagging_kshot.py --model).
PRIOR_STRENGTH = 0.003
# Beyond this many examples per label a fixed, evenly spread subset is used, so that a run stays quick.
MAX_EXAMPLES_PER_LABEL = 64
MAX_ITERATIONS = 200
# The share of the library kept by labels without examples is measured on at most this many photos.
MAX_LIBRARY_SAMPLE = 20_000


def select_examples(label_indices: np.ndarray, max_per_label: int = MAX_EXAMPLES_PER_LABEL) -> np.ndarray:
    """Row numbers to train on: at most `max_per_label` per label, evenly spread, deterministic."""
    label_indices = np.asarray(label_indices)
    keep = []
    for label in np.unique(label_indices):
        rows = np.flatnonzero(label_indices == label)
        if len(rows) > max_per_label:
            rows = rows[np.linspace(0, len(rows) - 1, max_per_label).round().astype(int)]
        keep.append(rows)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, int)


def adapt(classifier: LabelClassifier, examples: np.ndarray, label_indices: np.ndarray, center: np.ndarray, *,
          library: np.ndarray | None = None, strength: float = PRIOR_STRENGTH,
          max_per_label: int = MAX_EXAMPLES_PER_LABEL) -> LabelClassifier:
    """A zero-shot `classifier` refined by example embeddings (N, D) of labels `label_indices` (N,),
    around the library's mean embedding `center` (D,). No examples: the classifier unchanged. With
    `library`, the embeddings (M, D) of the library's other photos (not the examples), labels without
    examples keep their zero-shot share of them (keep_share)."""
    if classifier.zero_shot_weights is not None:
        raise ValueError("adapt() starts from a zero-shot classifier, not an adapted one")
    text, base_offsets = classifier.weights, classifier.offsets
    examples = np.asarray(examples, np.float64)
    label_indices = np.asarray(label_indices, int)
    if len(examples) == 0:
        return classifier
    rows = select_examples(label_indices, max_per_label)
    examples, label_indices = examples[rows], label_indices[rows]

    count, dim = text.shape
    temperature = classifier.calibration.temperature
    prior = strength * temperature ** 2
    center = np.asarray(center, np.float64)
    centered = examples - center
    anchor = text.astype(np.float64)
    fixed = anchor @ center + base_offsets  # each label's score for the mean photo, kept
    targets = np.zeros((len(examples), count))
    targets[np.arange(len(examples)), label_indices] = 1.0
    none_logits = None
    if classifier.background is not None:
        none_logits = temperature * (examples @ classifier.background + classifier.calibration.none_margin)

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        weights = flat.reshape(count, dim)
        logits = temperature * (centered @ weights.T + fixed)
        if none_logits is not None:
            logits = np.concatenate([logits, none_logits[:, None]], axis=1)
        top = logits.max(axis=1, keepdims=True)
        log_total = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
        probabilities = np.exp(logits[:, :count] - log_total[:, None])
        difference = weights - anchor
        value = float((log_total - (logits[:, :count] * targets).sum(axis=1)).sum()
                      + 0.5 * prior * (difference ** 2).sum())
        gradient = temperature * (probabilities - targets).T @ centered + prior * difference
        return value, gradient.ravel()

    solution, _ = minimize(objective, anchor.ravel(), max_iterations=MAX_ITERATIONS)
    weights = solution.reshape(count, dim).astype(np.float32)
    offsets = (fixed - weights.astype(np.float64) @ center).astype(np.float32)
    adapted = replace(classifier, weights=weights, offsets=offsets, zero_shot_weights=text)
    if library is None:
        return adapted
    return keep_share(classifier, adapted, np.asarray(library, np.float32), np.isin(np.arange(count), label_indices))


def library_sample(vectors: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """At most MAX_LIBRARY_SAMPLE rows of `vectors`, evenly spread, leaving out the rows `exclude` (the
    examples): indexes first, so a large library is never copied whole."""
    if exclude is None and len(vectors) <= MAX_LIBRARY_SAMPLE:
        return np.asarray(vectors, np.float32)
    rows = np.arange(len(vectors)) if exclude is None else np.setdiff1d(np.arange(len(vectors)), exclude)
    if len(rows) > MAX_LIBRARY_SAMPLE:
        rows = rows[np.linspace(0, len(rows) - 1, MAX_LIBRARY_SAMPLE).round().astype(int)]
    return np.asarray(vectors[rows], np.float32)


def keep_share(zero_shot: LabelClassifier, adapted: LabelClassifier, library: np.ndarray,
               learned: np.ndarray) -> LabelClassifier:
    """`adapted` with the offsets of the `learned` labels (mask) lowered by one common amount, so that the
    other labels are the best label of as many `library` photos as with `zero_shot`. Never raised."""
    if learned.all() or not learned.any() or len(library) == 0:
        return adapted
    library = library_sample(library)

    def lead(classifier):  # per photo: the best learned label's score minus the best other label's
        scores = classifier.scores(library).astype(np.float64)
        return scores[:, learned].max(axis=1) - scores[:, ~learned].max(axis=1)

    keep = int((lead(zero_shot) <= 0).sum())  # photos the labels without examples win at zero-shot
    if keep == 0:
        return adapted
    leads = np.sort(lead(adapted))
    # Between the keep-th and the next lead, so that exactly `keep` photos go to the other labels.
    shift = leads[keep - 1] if keep == len(leads) else (leads[keep - 1] + leads[keep]) / 2
    if shift <= 0:
        return adapted
    return replace(adapted, offsets=(adapted.offsets - np.where(learned, shift, 0.0)).astype(np.float32))
