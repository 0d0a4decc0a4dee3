"""k-shot curve of clipdesk's tagging: accuracy with k = 0, 1, 2, 4, 8, 16 confirmed examples per label.

    python benchmarks/tagging_kshot.py                        # synthetic CLIP-like embeddings
    python benchmarks/tagging_kshot.py --model resources/models/clipdesk-emoji-tiny \
        --manifest data/emoji-icons/heldout.jsonl --kind emoji [--template T]... [--plot OUT.png]

k examples per label are drawn from one part of the images (several draws), accuracy is measured on
the rest, which is never trained on. Synthetic: each label's images split in halves by a stable hash.
A manifest with styles: per seed, its styles shuffled and split in halves, examples from one half and
test images from the other (without styles: halves by hash). Methods:

  zero-shot     the labels' text embeddings (k = 0 for every method)
  linear probe  logistic regression on the k examples alone, as in the paper's few-shot comparison
                (L2 strength: the better of two for each k, chosen on the test half, i.e. favourably)
  prototypes    nearest mean of the examples (around the library mean)
  clipdesk      few_shot.adapt, as suggest.py calls it: a probe anchored to the zero-shot weights,
                labels without examples keeping their share of the library (docs/tagging.md)

A second table gives an uneven library: only half of the labels have examples (the common case when a
user confirms some labels), with the accuracy on the labels that have none.

With a model, the run also compares prompt templates at k = 0 and measures the open set: random
10-label sets over every image, how often images of other concepts get "none of these" and images of
the set's concepts wrongly do, at the default calibration and other margins.

Without a model the embeddings are synthetic: unit vectors built to look like CLIP's (image-text cosine
about 0.33 for a match and 0.25 otherwise, image-image about 0.55 within a label and 0.45 across, text-
text about 0.87), with the structure that makes zero-shot imperfect: prompts that partly describe
similar labels, photos that also show other things, styles and other nuisances shared across labels,
visual traits the text does not mention. They show the method's behaviour, not a model's accuracy.
Tables are printed (with a model: mean and median over seeds); a PNG plot is saved (--plot).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__":  # small matrices: BLAS threads only contend, with each other and with other jobs
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clipdesk.tagging.calibration import NONE_MARGIN, Calibration  # noqa: E402
from clipdesk.tagging.classifier import LabelClassifier  # noqa: E402
from clipdesk.tagging.few_shot import adapt  # noqa: E402
from clipdesk.tagging.lbfgs import minimize  # noqa: E402

SHOTS = (0, 1, 2, 4, 8, 16)
TEMPERATURE = 100.0
# (clutter: other things in the photo, prompt_bias: prompts leaning toward similar labels, nuisance)
REGIMES = {
    "easy": dict(clutter=0.08, prompt_bias=0.6, nuisance=1.0),
    "medium": dict(clutter=0.15, prompt_bias=0.6, nuisance=1.0),
    "hard": dict(clutter=0.2, prompt_bias=1.0, nuisance=1.4),
}
METHODS = ("zero-shot", "linear probe", "prototypes", "clipdesk")


def unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=-1, keepdims=True)


@dataclass
class Dataset:
    images: np.ndarray  # (N, D) unit
    labels: np.ndarray  # (N,) label index
    text: np.ndarray  # (L, D) unit: the labels' text embeddings
    background: np.ndarray | None  # (D,) "none of these"
    pool: np.ndarray  # row numbers examples are drawn from
    test: np.ndarray  # held-out row numbers
    names: tuple[str, ...]


def synthetic(seed: int, clutter: float, prompt_bias: float, nuisance: float, labels: int = 20, per_label: int = 60,
              dim: int = 512, group: int = 4, styles: int = 8, rank: int = 48) -> Dataset:
    rng = np.random.default_rng(seed)

    def directions(*shape):
        return unit(rng.standard_normal(shape + (dim,)))

    image_axis = directions()
    text_axis = unit(0.3 * image_axis + np.sqrt(1 - 0.3 ** 2) * directions())  # the modality gap
    group_of = np.repeat(np.arange(labels // group), group)
    meaning = unit(0.5 * directions(labels // group)[group_of] + np.sqrt(0.75) * directions(labels))
    looks, style_axes, nuisance_axes = directions(labels), directions(styles), directions(rank)
    similar = rng.standard_normal((labels, labels)) * (group_of[:, None] == group_of[None]) * (1 - np.eye(labels))
    text = unit(1.3 * text_axis + 0.5 * unit(meaning + prompt_bias * similar @ meaning / np.sqrt(group - 1)
                                             + 0.4 * directions(labels)))
    y = np.repeat(np.arange(labels), per_label)
    images = unit(1.3 * image_axis + 0.55 * meaning[y] + 0.35 * looks[y]
                  + clutter * rng.standard_normal((len(y), labels)) @ meaning
                  + 0.6 * style_axes[rng.integers(0, styles, len(y))]
                  + nuisance / np.sqrt(rank) * rng.standard_normal((len(y), rank)) @ nuisance_axes
                  + 0.4 * directions(len(y)))
    background = unit(1.3 * text_axis + 0.3 * directions())
    pool, test = split_halves([f"{seed}:{i}" for i in range(len(y))], y)
    return Dataset(images.astype(np.float32), y, text.astype(np.float32), background.astype(np.float32), pool, test,
                   tuple(f"label {i}" for i in range(labels)))


def split_halves(keys: list[str], labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per label, half the rows (by a stable hash of their key) for examples, the other half for testing."""
    pool, test = [], []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        rows = rows[np.argsort([hashlib.sha1(keys[row].encode()).hexdigest() for row in rows])]
        pool += list(rows[: len(rows) // 2])
        test += list(rows[len(rows) // 2:])
    return np.asarray(pool), np.asarray(test)


def statistics(data: Dataset) -> dict:
    scores = data.images @ data.text.T
    match = scores[np.arange(len(data.labels)), data.labels]
    same = data.labels[:, None] == data.labels[None]
    gram = data.images @ data.images.T
    off = ~np.eye(len(data.labels), dtype=bool)
    text_gram = data.text @ data.text.T
    return {"image-text match": float(match.mean()),
            "image-text other": float((scores.sum(1) - match).mean() / (len(data.text) - 1)),
            "image-image same label": float(gram[same & off].mean()),
            "image-image other label": float(gram[~same].mean()),
            "text-text": float(text_gram[~np.eye(len(data.text), dtype=bool)].mean())}


# --- methods: each returns predicted label indices for the test rows ---

def zero_shot_classifier(data: Dataset, temperature: float) -> LabelClassifier:
    # With the background, as the app adapts it (suggest.run_label_set); accuracy is still read closed-set.
    return LabelClassifier(data.names, data.text, np.zeros(len(data.text), np.float32), data.background,
                           Calibration(temperature))


def predict(classifier: LabelClassifier, images: np.ndarray) -> np.ndarray:
    return classifier.scores(images).argmax(axis=1)


def linear_probe(examples, labels, count, center, strength, temperature):
    """Multinomial logistic regression from zero weights, L2-regularised (the paper's few-shot baseline)."""
    centered = (examples - center).astype(np.float64)
    targets = np.eye(count)[labels]
    prior = strength * temperature ** 2

    def objective(flat):
        weights = flat.reshape(count, -1)
        logits = temperature * (centered @ weights[:, :-1].T + weights[:, -1])
        top = logits.max(1, keepdims=True)
        log_total = np.log(np.exp(logits - top).sum(1)) + top[:, 0]
        probabilities = np.exp(logits - log_total[:, None])
        value = (log_total - (logits * targets).sum(1)).sum() + 0.5 * prior * (weights[:, :-1] ** 2).sum()
        gradient = temperature * (probabilities - targets).T @ np.hstack([centered, np.ones((len(centered), 1))])
        gradient[:, :-1] += prior * weights[:, :-1]
        return value, gradient.ravel()

    solution, _ = minimize(objective, np.zeros(count * (examples.shape[1] + 1)), max_iterations=100)
    weights = solution.reshape(count, -1)
    return lambda images: ((images - center) @ weights[:, :-1].T + weights[:, -1]).argmax(1)


def prototypes(examples, labels, count, center):
    means = np.zeros((count, examples.shape[1]), np.float32)
    for label in np.unique(labels):
        means[label] = unit((examples[labels == label] - center).mean(0))
    return lambda images: ((images - center) @ means.T).argmax(1)


def draw(data: Dataset, k: int, rng, labelled: np.ndarray) -> np.ndarray:
    """k example rows per labelled label (all it has in its example half, if fewer)."""
    candidates = [data.pool[data.labels[data.pool] == label] for label in labelled]
    rows = [rng.choice(pool, min(k, len(pool)), replace=False) for pool in candidates]
    return np.concatenate(rows) if rows else np.zeros(0, int)


def evaluate(data: Dataset, shots=SHOTS, draws: int = 4, temperature: float = TEMPERATURE, uneven: bool = False,
             seed: int = 0) -> dict:
    """{method: [mean accuracy per k]}, plus 'clipdesk (labels without examples)' when uneven."""
    rng = np.random.default_rng(seed)
    count = len(data.text)
    test_images, test_labels = data.images[data.test], data.labels[data.test]
    center = data.images.mean(0)  # the whole library, unlabelled: known to the app
    zero_shot = zero_shot_classifier(data, temperature)
    zero_shot_correct = predict(zero_shot, test_images) == test_labels
    results = {method: [] for method in METHODS}
    # Which labels have examples is fixed per library, so every k is measured on the same split.
    labelled = np.sort(rng.permutation(count)[: count // 2]) if uneven else np.arange(count)
    if uneven:
        results["clipdesk, labels without examples"] = []
        results["zero-shot, labels without examples"] = []
    for k in shots:
        scores = {method: [] for method in results}
        for _ in range(draws if k else 1):
            rows = draw(data, k, rng, labelled) if k else np.zeros(0, int)
            examples, labels = data.images[rows], data.labels[rows]
            unlabelled = ~np.isin(test_labels, labelled)
            scores["zero-shot"].append(zero_shot_correct.mean())
            # as suggest.py calls it: the library's photos other than the examples
            adapted = adapt(zero_shot, examples, labels, center, library=np.delete(data.images, rows, axis=0))
            ours = predict(adapted, test_images) == test_labels
            scores["clipdesk"].append(ours.mean())
            if uneven:
                scores["clipdesk, labels without examples"].append(ours[unlabelled].mean())
                scores["zero-shot, labels without examples"].append(zero_shot_correct[unlabelled].mean())
            if k:
                probes = [linear_probe(examples, labels, count, center, s, temperature)(test_images) == test_labels
                          for s in (1e-3, 1e-2)]
                scores["linear probe"].append(max(p.mean() for p in probes))
                scores["prototypes"].append((prototypes(examples, labels, count, center)(test_images)
                                             == test_labels).mean())
        for method, values in scores.items():
            results[method].append(float(np.mean(values)) if values else float("nan"))
    return results


def table(results: dict, shots=SHOTS) -> str:
    width = max(len(method) for method in results) + 2
    lines = [f"{'method':<{width}}" + "".join(f"{'k=' + str(k):>8}" for k in shots)]
    for method, values in results.items():
        lines.append(f"{method:<{width}}" + "".join("       -" if np.isnan(v) else f"{100 * v:7.1f}%"
                                                     for v in values))
    return "\n".join(lines)


def verdict(results: dict) -> str:
    ours, zero = np.asarray(results["clipdesk"]), results["zero-shot"][0]
    monotone = bool(np.all(np.diff(ours) >= -1e-9))
    return (f"clipdesk starts at zero-shot ({100 * ours[0]:.1f}% = {100 * zero:.1f}%): {abs(ours[0] - zero) < 1e-9}; "
            f"never below it: {bool(np.all(ours >= zero - 1e-9))}; monotone: {monotone}")


COLOURS = {"zero-shot": (120, 120, 120), "linear probe": (214, 96, 77), "prototypes": (240, 170, 60),
           "clipdesk": (33, 102, 172), "clipdesk, labels without examples": (103, 169, 207),
           "zero-shot, labels without examples": (180, 180, 180)}


def plot(panels: list[tuple[str, dict]], out: Path, shots=SHOTS) -> None:
    """Accuracy against k, one panel per table, drawn with Pillow."""
    from PIL import Image, ImageDraw, ImageFont

    panel_w, panel_h, margin, columns = 420, 320, 48, 2
    block_h = panel_h + 110
    rows = (len(panels) + columns - 1) // columns
    image = Image.new("RGB", (panel_w * min(columns, len(panels)), block_h * rows), "white")
    ink = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for index, (title, results) in enumerate(panels):
        origin = (index // columns) * block_h
        left, top = (index % columns) * panel_w + margin, origin + 30
        width, height = panel_w - margin - 16, panel_h - 60
        values = [v for series in results.values() for v in series if not np.isnan(v)]
        low, high = np.floor(min(values) * 10) / 10, min(1.0, np.ceil(max(values) * 10) / 10)
        ink.text((left, origin + 8), title, fill="black", font=font)
        for tick in np.arange(low, high + 1e-9, 0.1):
            y = top + height - (tick - low) / (high - low) * height
            ink.line([(left, y), (left + width, y)], fill=(230, 230, 230))
            ink.text((left - 34, y - 6), f"{100 * tick:.0f}%", fill="black", font=font)
        xs = [left + i * width / (len(shots) - 1) for i in range(len(shots))]
        for x, k in zip(xs, shots):
            ink.text((x - 4, top + height + 6), str(k), fill="black", font=font)
        ink.text((left + width / 2 - 60, top + height + 20), "examples per label (k)", fill="black", font=font)
        ink.rectangle([left, top, left + width, top + height], outline="black")
        for row, (method, series) in enumerate(results.items()):
            points = [(x, top + height - (v - low) / (high - low) * height) for x, v in zip(xs, series)
                      if not np.isnan(v)]
            colour = COLOURS.get(method, (0, 0, 0))
            ink.line(points, fill=colour, width=3 if method == "clipdesk" else 2)
            for x, y in points:
                ink.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
            key_y = origin + panel_h + 12 + 14 * row
            ink.line([(left, key_y), (left + 20, key_y)], fill=colour, width=3)
            ink.text((left + 26, key_y - 6), method, fill="black", font=font)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)


# --- real embeddings: a model package and a labelled manifest ---

# Wordings compared at k = 0: the app's default, the paper's ensembles, and wordings like the captions the
# bundled model was trained on ("an emoji of a cat face", "a cat face icon").
TEMPLATE_CHOICES = {
    "the model's own (app default)": ("model",),
    "a photo of a {}.": ("default",),
    "ensemble-7 (paper)": ("ensemble-7",),
    "ensemble (paper, 80)": ("ensemble",),
    "an emoji of a {}.": ("an emoji of a {}.",),
    "emoji/icon 4 (model card)": ("an emoji of a {}.", "a {} icon.", "{}", "a picture of a {}."),
}
OPEN_SET_SIZE = 10  # labels per label set in the open-set figures: a typical set a user writes
OPEN_SET_DRAWS = 20  # random label sets per seed
MARGINS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25)


@dataclass
class Manifest:
    images: np.ndarray  # (N, D) unit
    labels: np.ndarray  # (N,)
    styles: np.ndarray | None  # (N,) style per image; None when the manifest has none
    keys: list[str]
    names: tuple[str, ...]
    model: object  # runtime ClipModel
    temperature: float


def load_manifest(manifest: Path, model_name: str, kind: str | None, limit_per_label: int) -> Manifest:
    from clipdesk.runtime.encoders import load_model

    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        if kind is None or row.get("kind") == kind:
            by_label.setdefault(row["label"], []).append(row)
    names = sorted(label for label, members in by_label.items() if len(members) >= 4)
    chosen, labels = [], []
    for index, name in enumerate(names):
        members = sorted(by_label[name], key=lambda row: hashlib.sha1(row["image"].encode()).hexdigest())
        chosen += members[:limit_per_label]
        labels += [index] * len(members[:limit_per_label])
    model = load_model(model_name)
    images = model.image.encode_files([manifest.parent / row["image"] for row in chosen], batch_size=64)
    styles = np.asarray([row["style"] for row in chosen]) if all("style" in row for row in chosen) else None
    return Manifest(images, np.asarray(labels), styles, [row["image"] for row in chosen], tuple(names), model,
                    Calibration.for_model(model.package).temperature)


def text_side(data: Manifest, templates) -> tuple[np.ndarray, np.ndarray]:
    """The labels' text embeddings and the "none of these" background, as the app builds them."""
    from clipdesk.tagging.prompts import resolve_templates
    from clipdesk.tagging.zero_shot import zero_shot_classifier as text_classifier

    templates = resolve_templates(templates, data.model.package.manifest.templates)
    classifier = text_classifier(data.model, data.names, templates)
    return classifier.weights, classifier.background


def split_by_style(data: Manifest, rng) -> tuple[np.ndarray, np.ndarray]:
    """Examples from half of the styles, test images from the other half: an example is never the test
    image itself nor its skin-tone variant in the same style, and the labels must carry across styles,
    as a user's photos differ from the few they confirmed. Without styles: halves by a stable hash."""
    if data.styles is None:
        return split_halves(data.keys, data.labels)
    styles = rng.permutation(np.unique(data.styles))
    pool = np.isin(data.styles, styles[: len(styles) // 2])
    return np.flatnonzero(pool), np.flatnonzero(~pool)


def real_curves(data: Manifest, weights, background, seeds: int, draws: int, uneven: bool) -> list[dict]:
    """evaluate() once per seed, each seed with its own style split and example draws."""
    runs = []
    for seed in range(seeds):
        pool, test = split_by_style(data, np.random.default_rng(seed))
        dataset = Dataset(data.images, data.labels, weights, background, pool, test, data.names)
        runs.append(evaluate(dataset, draws=draws, temperature=data.temperature, uneven=uneven, seed=seed))
    return runs


def zero_shot_accuracy(data: Manifest, weights) -> tuple[float, float]:
    """Top-1 and top-5 over all the manifest's labels, every image."""
    ranked = np.argsort(-(data.images @ weights.T), axis=1)[:, :5]
    return float((ranked[:, 0] == data.labels).mean()), float((ranked == data.labels[:, None]).any(1).mean())


def open_set(data: Manifest, weights, background, seeds: int, size: int, margin: float = 0.0) -> np.ndarray:
    """Label sets of `size` random labels applied to every image, through the app's own decision
    (LabelClassifier.predict().best()). Per seed, the mean over its label sets of OPEN_SET_COLUMNS:
    images of other concepts answered "none of these"; images of the set's concepts answered "none",
    or given their label, and their mean confidence; the expected calibration error (15 bins) of the
    answer's confidence on the set's images and on all images (right: the label, or "none" for an
    image of another concept); how well best label minus background tells the set's images from the
    others (AUROC: 0.5 is chance, independent of the margin)."""
    per_seed = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        figures = []
        for _ in range(OPEN_SET_DRAWS):
            chosen = rng.permutation(len(data.names))[:size]
            classifier = LabelClassifier(tuple(data.names[i] for i in chosen), weights[chosen],
                                         np.zeros(size, np.float32), background,
                                         Calibration(data.temperature, margin))
            best, confidence = classifier.predict(data.images).best()
            position = np.full(len(data.names), -1)
            position[chosen] = np.arange(size)
            truth = position[data.labels]  # -1: the image's concept is not in the set
            known, correct = truth >= 0, best == truth
            lead = classifier.scores(data.images).max(1) - data.images @ background
            figures.append(((best[~known] == -1).mean(), (best[known] == -1).mean(), correct[known].mean(),
                            confidence[known].mean(), calibration_error(confidence[known], correct[known]),
                            calibration_error(confidence, correct), auroc(lead[known], lead[~known])))
        per_seed.append(np.mean(figures, axis=0))
    return np.asarray(per_seed)  # (seeds, len(OPEN_SET_COLUMNS))


OPEN_SET_COLUMNS = ("others -> none", "in set -> none", "in set -> right", "in-set confidence", "ECE in set",
                    "ECE all", "AUROC")


def calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    return float(sum(abs(correct[which == b].mean() - confidence[which == b].mean()) * (which == b).mean()
                     for b in np.unique(which)))


def auroc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(a positive scores above a negative), from ranks (Mann-Whitney)."""
    ranks = np.argsort(np.argsort(np.concatenate([positives, negatives]))) + 1
    return float((ranks[: len(positives)].sum() - len(positives) * (len(positives) + 1) / 2)
                 / (len(positives) * len(negatives)))


def summary(runs: list[dict]) -> tuple[dict, dict]:
    """Mean and median over seeds, per method and k."""
    methods = runs[0]
    return ({m: list(np.mean([run[m] for run in runs], axis=0)) for m in methods},
            {m: list(np.median([run[m] for run in runs], axis=0)) for m in methods})


def per_seed_verdict(runs: list[dict]) -> str:
    """How many seeds pass on their own, and the largest step down of a seed's curve (draw noise)."""
    curves = [np.asarray(run["clipdesk"]) for run in runs]
    good = sum(bool(np.all(c >= c[0] - 1e-9) and np.all(np.diff(c) >= -1e-9)) for c in curves)
    dip = max(float(-np.diff(c).min()) for c in curves)
    return (f"seeds where clipdesk is never below zero-shot and monotone: {good}/{len(runs)}"
            + (f" (largest step down in one seed: {100 * dip:.1f} points)" if dip > 0 else ""))


def real_main(args) -> list[tuple[str, dict]]:
    seeds, draws = args.seeds or 5, args.draws or 2
    data = load_manifest(args.manifest, args.model, args.kind, args.limit_per_label)
    templates = args.template or ["model"]
    weights, background = text_side(data, templates)
    size = min(OPEN_SET_SIZE, len(data.names) - 1)  # some concepts must stay outside the set
    styles = "no styles: halves by hash" if data.styles is None else \
        f"{len(np.unique(data.styles))} styles, examples from half of them and test images from the others"
    print(f"{args.manifest} (kind {args.kind or 'all'}): {len(data.names)} labels, {len(data.labels)} images, "
          f"{styles}; model {args.model}, temperature {data.temperature:.1f}; templates {', '.join(templates)}; "
          f"{seeds} seeds x {draws} draws per k (a label with fewer examples than k uses all it has)")
    panels = []
    for uneven in (False, True):
        runs = real_curves(data, weights, background, seeds, draws, uneven)
        mean, median = summary(runs)
        title = "every label with examples" if not uneven else "half the labels with examples"
        print(f"\n{title}: mean over seeds\n{table(mean)}\n{verdict(mean)}\n{per_seed_verdict(runs)}")
        print(f"{title}: median over seeds\n{table(median)}")
        panels.append((f"real, {title} (mean of {seeds} seeds)", mean))

    print(f"\nTemplates at k = 0 (all {len(data.labels)} images; open set: {size}-label sets, margin 0; "
          f"mean over {seeds} seeds)")
    print(f"{'templates':<34}{'top-1':>8}{'top-5':>8}{'others -> none':>16}{'in set -> none':>16}{'AUROC':>7}")
    for name, choice in TEMPLATE_CHOICES.items():
        choice_weights, choice_background = text_side(data, choice)
        top1, top5 = zero_shot_accuracy(data, choice_weights)
        figures = open_set(data, choice_weights, choice_background, seeds, size).mean(0)
        print(f"{name:<34}{100 * top1:7.1f}%{100 * top5:7.1f}%{100 * figures[0]:15.1f}%{100 * figures[1]:15.1f}%"
              f"{figures[6]:7.3f}")

    print(f"\nOpen set with templates {', '.join(templates)}: {size}-label sets ({OPEN_SET_DRAWS} per seed), "
          f"every image; mean (median) over {seeds} seeds; margin {NONE_MARGIN} is the default")
    print(f"{'margin':<8}" + "".join(f"{c:>19}" for c in OPEN_SET_COLUMNS))
    for margin in sorted({NONE_MARGIN, *MARGINS}):
        figures = open_set(data, weights, background, seeds, size, margin)
        cells = [f"{100 * m:.1f}% ({100 * d:.1f}%)" if i < 4 else f"{m:.3f} ({d:.3f})"
                 for i, (m, d) in enumerate(zip(figures.mean(0), np.median(figures, 0)))]
        print(f"{margin:<8}" + "".join(f"{c:>19}" for c in cells))
    return panels


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model name or package folder (with --manifest)")
    parser.add_argument("--manifest", type=Path, help="JSONL rows with 'image', 'label' and optionally 'style', "
                                                      "'kind' (e.g. data/emoji-icons/heldout.jsonl)")
    parser.add_argument("--kind", help="only the manifest's rows of this kind (e.g. emoji)")
    parser.add_argument("--template", action="append", help="templates for the real run (default: the app's, "
                                                            "'model': the model's own, else 'a photo of a {}.')")
    parser.add_argument("--limit-per-label", type=int, default=64)
    parser.add_argument("--draws", type=int, help="example draws averaged per k (default 4 synthetic, 2 real)")
    parser.add_argument("--seeds", type=int, help="synthetic libraries per regime (default 2), or style splits "
                                                  "of the manifest (default 5)")
    parser.add_argument("--regime", action="append", choices=sorted(REGIMES), help="synthetic regimes (default all)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--plot", type=Path, default=Path("tagging_kshot.png"))
    args = parser.parse_args(argv)
    if bool(args.model) != bool(args.manifest):
        parser.error("--model and --manifest go together")
    started = time.monotonic()
    panels = real_main(args) if args.manifest else synthetic_main(args)
    plot(panels, args.plot)
    print(f"\nplot: {args.plot}   ({time.monotonic() - started:.0f} s)")
    return 0


def synthetic_main(args) -> list[tuple[str, dict]]:
    from clipdesk import paths

    bundled = [p.parent.name for p in paths.bundled_models_dir().glob("*/manifest.json")]
    if bundled:
        print(f"note: a bundled model exists ({', '.join(bundled)}): re-run with --model and --manifest "
              "for figures on real embeddings")
    print("SYNTHETIC embeddings: these figures show the method's behaviour, not a model's accuracy.")
    panels = []
    for regime in args.regime or list(REGIMES):
        for uneven in (False, True):
            runs = [evaluate(synthetic(seed, dim=args.dim, **REGIMES[regime]), draws=args.draws or 4, uneven=uneven,
                             seed=seed) for seed in range(args.seeds or 2)]
            results = {method: list(np.mean([run[method] for run in runs], axis=0)) for method in runs[0]}
            if not uneven:
                stats = statistics(synthetic(0, dim=args.dim, **REGIMES[regime]))
                print(f"\n[{regime}] cosines: " + ", ".join(f"{k} {v:.2f}" for k, v in stats.items()))
            title = f"{regime}" + (", half the labels with examples" if uneven else ", every label")
            print(f"{title}\n{table(results)}\n{verdict(results)}")
            panels.append((f"synthetic {title}", results))
    return panels



if __name__ == "__main__":
    sys.exit(main())
