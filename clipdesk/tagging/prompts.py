"""Prompts from labels and templates, and the text side of a classifier: one embedding per label.

With several templates a label's embedding is the paper's ensemble: the mean of the L2-normalised
embeddings of every filled template, normalised again (Radford et al., 2021, section 3.1.4).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from clipdesk.errors import ClipdeskError
from clipdesk.tagging.names import unique_names
from clipdesk.tagging.templates import BACKGROUND_WORDS, DEFAULT_TEMPLATE, NAMED_TEMPLATES

PLACEHOLDER = "{}"
# The template name that stands for the model's own templates (its manifest's `templates`, else
# DEFAULT_TEMPLATE). Label sets store the name, not the text, so they follow a change of model.
MODEL_TEMPLATES = "model"


def check_template(template: str) -> str:
    text = str(template).strip()
    if text.count(PLACEHOLDER) != 1:
        raise ClipdeskError(f"prompt template {text!r} needs exactly one '{{}}' where the label goes, "
                            "e.g. 'a photo of a {}.'")
    return text


def resolve_templates(values: Sequence[str] | None, model_templates: Sequence[str] | None = None) -> tuple[str, ...]:
    """Templates from names (`model`, `default`, `ensemble`, `ensemble-7`) and literal templates, in order,
    without duplicates; none given means `model`. `model` becomes `model_templates` (the manifest's
    list; empty: the default template), or stays a name when no model is given (stored label sets)."""
    templates: list[str] = []
    for value in values or (MODEL_TEMPLATES,):
        if str(value).strip() == MODEL_TEMPLATES:
            expanded = (MODEL_TEMPLATES,) if model_templates is None else tuple(model_templates) or (DEFAULT_TEMPLATE,)
        else:
            expanded = NAMED_TEMPLATES.get(str(value).strip(), None)
        if expanded is None and PLACEHOLDER not in str(value):
            raise ClipdeskError(f"unknown template {str(value).strip()!r}: give a template with {{}} where the label "
                                f"goes, or one of {', '.join((MODEL_TEMPLATES, *NAMED_TEMPLATES))}")
        for template in expanded if expanded is not None else (check_template(value),):
            if template not in templates:
                templates.append(template)
    return tuple(templates)


def fill(template: str, label: str) -> str:
    return template.replace(PLACEHOLDER, label)


def parse_labels(value: str) -> list[str]:
    """`--labels` input: a file with one label per line (blank lines and lines starting with # skipped)
    when `value` names an existing file, else a comma-separated list."""
    if os.path.isfile(value):
        try:
            with open(value, encoding="utf-8-sig") as handle:
                items = [line.strip() for line in handle]
        except (OSError, UnicodeDecodeError) as exc:
            raise ClipdeskError(f"{value}: cannot read labels ({exc}); give a UTF-8 text file, one label per line")
        items = [item for item in items if item and not item.startswith("#")]
    else:
        items = [item.strip() for item in value.split(",") if item.strip()]
    labels = unique_names(items, "label")
    if not labels:
        raise ClipdeskError(f"no labels in {value!r}: give a comma-separated list or a file with one label per line")
    return labels


def ensemble_embeddings(text_encoder, labels: Sequence[str], templates: Sequence[str],
                        batch_size: int = 256) -> np.ndarray:
    """(len(labels), D) float32 unit vectors: each label's templates embedded, averaged, renormalised."""
    templates = [check_template(template) for template in templates] or [DEFAULT_TEMPLATE]
    prompts = [fill(template, label) for label in labels for template in templates]
    if not prompts:
        raise ClipdeskError("no labels to embed")
    embeddings = text_encoder.encode(prompts, batch_size=batch_size)  # rows are unit vectors
    means = embeddings.reshape(len(labels), len(templates), -1).mean(axis=1)
    return _unit_rows(means)


def background_embedding(text_encoder, templates: Sequence[str]) -> np.ndarray:
    """(D,) unit vector for "none of these": generic words through the same templates."""
    return _unit_rows(ensemble_embeddings(text_encoder, BACKGROUND_WORDS, templates).mean(axis=0, keepdims=True))[0]


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), np.finfo(np.float32).tiny)
