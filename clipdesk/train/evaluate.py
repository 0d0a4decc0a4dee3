"""Validation figures: zero-shot classification and image↔text retrieval.

Zero-shot (the paper's protocol): each label is written into every prompt template, the L2-normalised
text embeddings are averaged over templates and normalised again, and an image is classified by the
nearest label embedding. Top-1/top-5 count images whose true label is among the best 1/5.

Retrieval: recall@k in both directions over the validation rows. Captions are compared as strings, so a
caption shared by several images (common in small or synthetic sets) is one text with several correct
images, and a retrieval counts as a hit when any correct partner is among the best k.

Images go through exactly the run side's preprocessing, and the model runs in fp32, so the figures are
those the exported package will give.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from clipdesk.errors import ClipdeskError
from clipdesk.model.clip import CLIP
from clipdesk.runtime.tokenizer import get_tokenizer
from clipdesk.train.data import EvalSet, RowProblems, Sample, make_loader
from clipdesk.train.gradcache import embed_images, embed_texts

DEFAULT_TEMPLATES = ("a photo of a {}.", "a picture of a {}.", "{}")
ZERO_SHOT_K = (1, 5)
RECALL_K = (1, 5, 10)
_QUERY_CHUNK = 1024


def read_labels(spec: str) -> list[str]:
    """A file with one label per line, or a comma-separated list."""
    path = Path(spec).expanduser()
    text = path.read_text(encoding="utf-8").splitlines() if path.is_file() else spec.split(",")
    labels = list(dict.fromkeys(label.strip() for label in text if label.strip()))
    if not labels:
        raise ClipdeskError(f"--labels {spec}: no labels found")
    return labels


@torch.no_grad()
def encode_texts(model: CLIP, texts: Sequence[str], device, batch_size: int = 256) -> torch.Tensor:
    tokenizer = get_tokenizer()
    parts = []
    for start in range(0, len(texts), batch_size):
        ids = tokenizer(list(texts[start:start + batch_size]), model.context_length)
        parts.append(embed_texts(model, torch.from_numpy(ids).to(device)))
    return torch.cat(parts) if parts else torch.zeros(0, model.config.embed_dim, device=device)


@torch.no_grad()
def label_embeddings(model: CLIP, labels: Sequence[str], templates: Sequence[str], device) -> torch.Tensor:
    """(labels, D): per label, the renormalised mean of its template prompts' embeddings."""
    prompts = [template.format(label) for label in labels for template in templates]
    embedded = encode_texts(model, prompts, device).view(len(labels), len(templates), -1).mean(dim=1)
    return torch.nn.functional.normalize(embedded, dim=-1)


def top_k_accuracy(image: torch.Tensor, targets: torch.Tensor, classes: torch.Tensor,
                   ks: Sequence[int] = ZERO_SHOT_K) -> dict[int, float]:
    """Fraction of images whose target class is among the k most similar classes, for each k."""
    ranked = (image @ classes.t()).topk(min(max(ks), classes.shape[0]), dim=1).indices
    hits = ranked == targets[:, None]
    return {k: float(hits[:, :k].any(dim=1).float().mean()) for k in ks}


def _recall(queries: torch.Tensor, keys: torch.Tensor, positives: list[list[int]],
            ks: Sequence[int]) -> dict[int, float]:
    """Fraction of queries with a correct key among their best k; positives[q] lists q's correct keys."""
    found = {k: 0 for k in ks}
    depth = min(max(ks), keys.shape[0])
    for start in range(0, queries.shape[0], _QUERY_CHUNK):
        chunk = queries[start:start + _QUERY_CHUNK]
        ranked = (chunk @ keys.t()).topk(depth, dim=1).indices
        correct = torch.zeros(chunk.shape[0], keys.shape[0], dtype=torch.bool, device=keys.device)
        for row, keys_of_query in enumerate(positives[start:start + chunk.shape[0]]):
            correct[row, keys_of_query] = True
        hits = correct.gather(1, ranked)
        for k in ks:
            found[k] += int(hits[:, :k].any(dim=1).sum())
    return {k: found[k] / max(1, queries.shape[0]) for k in ks}


def retrieval_recall(image: torch.Tensor, text: torch.Tensor, image_texts: list[list[int]],
                     ks: Sequence[int] = RECALL_K) -> dict[str, float]:
    text_images: list[list[int]] = [[] for _ in range(text.shape[0])]
    for image_row, texts in enumerate(image_texts):
        for text_row in texts:
            text_images[text_row].append(image_row)
    results = {}
    for direction, recall in (("image_to_text", _recall(image, text, image_texts, ks)),
                              ("text_to_image", _recall(text, image, text_images, ks))):
        results.update({f"{direction}_r{k}": value for k, value in recall.items()})
    return results


@torch.no_grad()
def embed_eval_images(model: CLIP, samples: list[Sample], mean, std, device, workers: int, batch_size: int,
                      problems: RowProblems) -> tuple[torch.Tensor, list[int]]:
    """Embeddings of the readable validation images and their row numbers; unreadable ones counted."""
    dataset = EvalSet(samples, model.config.image_resolution, mean, std)
    embedded, rows = [], []
    for batch in make_loader(dataset, workers, batch_size=batch_size):
        for skipped in batch.skipped:
            problems.add(skipped.reason, skipped.where, skipped.detail)
        if len(batch.second):
            embedded.append(embed_images(model, batch.pixels.to(device)))
            rows.extend(batch.second.tolist())
    return (torch.cat(embedded) if embedded else torch.zeros(0, model.config.embed_dim, device=device)), rows


@torch.no_grad()
def evaluate(model: CLIP, samples: list[Sample], mean, std, *, labels: list[str] | None,
             templates: Sequence[str] = DEFAULT_TEMPLATES, device="cpu", workers: int = 0, batch_size: int = 256,
             problems: RowProblems | None = None) -> dict:
    """Zero-shot and retrieval figures of `model` on validation rows, images normalised with mean/std.

    Labels default to the rows' own 'label' values. The model is left in its previous train/eval mode.
    """
    problems = problems if problems is not None else RowProblems()
    was_training = model.training
    model.eval()
    try:
        image, rows = embed_eval_images(model, samples, mean, std, device, workers, batch_size, problems)
        kept = [samples[row] for row in rows]
        results: dict = {"images": len(kept)}
        texts = list(dict.fromkeys(caption for sample in kept for caption in sample.captions))
        index = {caption: i for i, caption in enumerate(texts)}
        if kept:
            text = encode_texts(model, texts, device)
            results.update(retrieval_recall(image, text, [[index[c] for c in s.captions] for s in kept]))
        label_set = labels if labels is not None else sorted({s.label for s in kept if s.label})
        position = {label: i for i, label in enumerate(label_set)}
        labelled = [i for i, sample in enumerate(kept) if sample.label in position]
        if label_set and labelled:
            classes = label_embeddings(model, label_set, templates, device)
            targets = torch.tensor([position[kept[i].label] for i in labelled], device=image.device)
            accuracy = top_k_accuracy(image[labelled], targets, classes)
            results.update({f"zero_shot_top{k}": value for k, value in accuracy.items()})
            results.update(zero_shot_images=len(labelled), zero_shot_labels=len(label_set),
                           zero_shot_chance=1 / len(label_set))
        return results
    finally:
        model.train(was_training)
