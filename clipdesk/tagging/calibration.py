"""How cosine similarities become confidences, and how "none of these" is decided.

A label set is scored as one open-set choice per photo: its labels plus a "none of these" outcome.

- Each label's score is the cosine similarity between the photo's embedding and the label's text
  embedding (its template ensemble). "None of these" scores the cosine with a background embedding:
  the same templates filled with generic words ("thing", "object", "scene"...), plus `none_margin` (the
  model's fitted `none_bias`, or NONE_MARGIN).
  A label therefore has to describe the photo better than a generic caption in the same wording;
  since template wording moves labels and background alike, it cancels out.
- Confidences are a softmax over those L + 1 scores at a temperature. A model whose manifest carries a
  `calibration` (fitted on held-out labelled images by calibration_fit.py, with the figures it was
  measured at) uses its temperature and adds its `none_bias` to the background's score; they were
  chosen so that a confidence means what it says: of the answers shown at about 90 %, about 90 % are
  right. Other models use the logit scale they learned in contrastive training (CLIP's 100) and no
  bias. Confidences sum to 1 per photo; `--apply-above 0.9` means a 9-in-10 confidence.
- Labels in one set are treated as alternatives (one per photo, or none). Independent facets (scene,
  people, season) belong in separate label sets.

The temperature is capped at MAX_TEMPERATURE (CLIP's own clamp) so that a damaged or odd manifest cannot
turn every score into 0 or 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_TEMPERATURE = 100.0
# In cosine units. 0: a label wins over "none" as soon as it beats the generic caption. Raise it to ask
# for clearer evidence before a photo gets any label.
NONE_MARGIN = 0.0
NONE_LABEL = "none of these"


@dataclass(frozen=True)
class Calibration:
    temperature: float
    none_margin: float = NONE_MARGIN

    @classmethod
    def for_model(cls, package) -> "Calibration":
        fitted = package.manifest.calibration or {}
        temperature, bias = fitted.get("temperature"), fitted.get("none_bias", NONE_MARGIN)
        if _finite(temperature) and temperature > 0 and _finite(bias):
            return cls(temperature=min(float(temperature), MAX_TEMPERATURE), none_margin=float(bias))
        scale = float(package.manifest.logit_scale)
        if not np.isfinite(scale) or scale <= 0:
            scale = MAX_TEMPERATURE
        return cls(temperature=min(scale, MAX_TEMPERATURE))


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def open_set_probabilities(label_scores: np.ndarray, none_scores: np.ndarray | None,
                           calibration: Calibration) -> tuple[np.ndarray, np.ndarray]:
    """(N, L) label confidences and (N,) "none of these" confidences from cosine scores.

    `none_scores` None makes the choice closed-set (the paper's setting): the none column is all 0.
    """
    scores = np.asarray(label_scores, np.float64)
    if none_scores is None:
        return softmax(calibration.temperature * scores), np.zeros(len(scores))
    columns = np.concatenate([scores, (np.asarray(none_scores, np.float64) + calibration.none_margin)[:, None]], 1)
    probabilities = softmax(calibration.temperature * columns)
    return probabilities[:, :-1], probabilities[:, -1]
