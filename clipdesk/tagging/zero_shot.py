"""Zero-shot classifiers: labels and templates through the text encoder, no training."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clipdesk.tagging.calibration import Calibration
from clipdesk.tagging.classifier import LabelClassifier
from clipdesk.tagging.prompts import background_embedding, ensemble_embeddings


def zero_shot_classifier(model, labels: Sequence[str], templates: Sequence[str], *,
                         open_set: bool = True) -> LabelClassifier:
    """`model` is a runtime ClipModel; its text encoder embeds every label with every template."""
    weights = ensemble_embeddings(model.text, labels, templates)
    background = background_embedding(model.text, templates) if open_set else None
    return LabelClassifier(tuple(labels), weights, np.zeros(len(labels), np.float32), background,
                           Calibration.for_model(model.package))
