"""k-shot curve of clipdesk's tagging: accuracy with k = 0, 1, 2, 4, 8, 16 confirmed examples per label.

    python benchmarks/tagging_kshot.py                        # synthetic CLIP-like embeddings
    python benchmarks/tagging_kshot.py --model NAME_OR_DIR --manifest heldout.jsonl [--template T]...

Each label's images are split in two halves by a stable hash: k examples per label are drawn from one
half (several draws), accuracy is measured on the other half, which is never trained on. Methods:

  zero-shot     the labels' text embeddings (k = 0 for every method)
  linear probe  logistic regression on the k examples alone, as in the paper's few-shot comparison
                (L2 strength: the better of two for each k, chosen on the test half, i.e. favourably)
  prototypes    nearest mean of the examples (around the library mean)
  clipdesk      few_shot.adapt: a probe anchored to the zero-shot weights (docs/tagging.md)

A second table gives an uneven library: only half of the labels have examples (the common case when a
user confirms some labels), with the accuracy on the labels that have none.

Without a model the embeddings are synthetic: unit vectors built to look like CLIP's (image-text cosine
about 0.33 for a match and 0.25 otherwise, image-image about 0.55 within a label and 0.45 across, text-
text about 0.87), with the structure that makes zero-shot imperfect: prompts that partly describe
similar labels, photos that also show other things, styles and other nuisances shared across labels,
visual traits the text does not mention. They show the method's behaviour, not the default model's
accuracy: re-run with --model and a manifest of held-out images once a trained model exists.
The table is printed; a PNG plot is saved (--plot).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clipdesk.tagging.calibration import Calibration  # noqa: E402
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
    return LabelClassifier(data.names, data.text, np.zeros(len(data.text), np.float32), None, Calibration(temperature))


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
            ours = predict(adapt(zero_shot, examples, labels, center), test_images) == test_labels
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


def manifest_dataset(manifest: Path, model_name: str, templates: list[str], limit_per_label: int) -> Dataset:
    from clipdesk.runtime.encoders import load_model
    from clipdesk.tagging.prompts import resolve_templates
    from clipdesk.tagging.zero_shot import zero_shot_classifier as text_classifier

    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_label: dict[str, list[str]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(str(manifest.parent / row["image"]))
    names = sorted(label for label, files in by_label.items() if len(files) >= 4)
    files, labels = [], []
    for index, name in enumerate(names):
        chosen = sorted(by_label[name], key=lambda f: hashlib.sha1(f.encode()).hexdigest())[:limit_per_label]
        files += chosen
        labels += [index] * len(chosen)
    model = load_model(model_name)
    images = model.image.encode_files(files)
    classifier = text_classifier(model, names, resolve_templates(templates))
    y = np.asarray(labels)
    pool, test = split_halves(files, y)
    return Dataset(images, y, classifier.weights, classifier.background, pool, test, tuple(names))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model name or package folder (with --manifest)")
    parser.add_argument("--manifest", type=Path, help="JSONL rows with 'image' and 'label' (e.g. heldout.jsonl)")
    parser.add_argument("--template", action="append", help="templates for the real run (default: 'a photo of a {}.')")
    parser.add_argument("--limit-per-label", type=int, default=64)
    parser.add_argument("--draws", type=int, default=4, help="example draws averaged per k (default 4)")
    parser.add_argument("--seeds", type=int, default=2, help="synthetic libraries per regime (default 2)")
    parser.add_argument("--regime", action="append", choices=sorted(REGIMES), help="synthetic regimes (default all)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--plot", type=Path, default=Path("tagging_kshot.png"))
    args = parser.parse_args(argv)
    started = time.monotonic()
    panels = []
    if args.manifest:
        from clipdesk.runtime.encoders import load_model
        from clipdesk.tagging.calibration import Calibration as Cal

        data = manifest_dataset(args.manifest, args.model, args.template or ["default"], args.limit_per_label)
        temperature = Cal.for_model(load_model(args.model).package).temperature
        short = sum(int((data.labels[data.pool] == label).sum() < max(SHOTS)) for label in range(len(data.names)))
        print(f"{args.manifest}: {len(data.names)} labels, {len(data.labels)} images, model {args.model}; "
              f"{short} labels have fewer than {max(SHOTS)} images to draw examples from (all of them are used)")
        for uneven in (False, True):
            results = evaluate(data, draws=args.draws, temperature=temperature, uneven=uneven)
            title = "real embeddings" + (", half the labels with examples" if uneven else "")
            print(f"\n{title}\n{table(results)}\n{verdict(results)}")
            panels.append((title, results))
    else:
        from clipdesk import paths

        bundled = [p.name for p in paths.bundled_models_dir().glob("*/manifest.json")]
        if bundled:
            print(f"note: a bundled model exists ({', '.join(bundled)}): re-run with --model and --manifest "
                  "for figures on real embeddings")
        print("SYNTHETIC embeddings: these figures show the method's behaviour, not a model's accuracy.")
        for regime in args.regime or list(REGIMES):
            for uneven in (False, True):
                runs = [evaluate(synthetic(seed, dim=args.dim, **REGIMES[regime]), draws=args.draws, uneven=uneven,
                                 seed=seed) for seed in range(args.seeds)]
                results = {method: list(np.mean([run[method] for run in runs], axis=0)) for method in runs[0]}
                if not uneven:
                    stats = statistics(synthetic(0, dim=args.dim, **REGIMES[regime]))
                    print(f"\n[{regime}] cosines: " + ", ".join(f"{k} {v:.2f}" for k, v in stats.items()))
                title = f"{regime}" + (", half the labels with examples" if uneven else ", every label")
                print(f"{title}\n{table(results)}\n{verdict(results)}")
                panels.append((f"synthetic {title}", results))
    plot(panels, args.plot)
    print(f"\nplot: {args.plot}   ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
