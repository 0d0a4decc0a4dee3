"""Tagging confidences, fitted and measured on held-out images: the calibration of a model's suggestions.

Episodes (clipdesk/tagging/calibration_fit.py) are photos against random label sets of 2 to 8 labels;
in half of the emoji episodes the right label is left out, so the right answer is "none of these"; every
photo episode's right answer is "none of these" (the emoji model cannot read photographs).

    fit on    Apple-style emoji (make eval-styles; a style the model never saw) + coco-mini photos
    measured  Facebook-style emoji, the validation split and the held-out concepts (make data), and
              ImageNet-sample photos: none of them in the fit

It prints the expected calibration error (15 bins) and the reliability table before (the model's own
logit scale, no bias) and after, and with --write stores the fitted calibration in the package's
manifest, and --plot draws the reliability diagram (PNG).

    .venv/bin/python benchmarks/tagging_calibration.py [--model DIR] [--write] [--plot docs/FILE.png]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from clipdesk.runtime.encoders import ClipModel
from clipdesk.runtime.package import load_package, save_manifest
from clipdesk.tagging.calibration import MAX_TEMPERATURE, Calibration
from clipdesk.tagging.calibration_fit import (
    Episodes, chosen, expected_calibration_error, fit, make_episodes, outcome_probabilities, reliability,
)
from clipdesk.tagging.prompts import background_embedding, ensemble_embeddings, resolve_templates

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO.parent / "shared" / "data" / "photos"
SIZES = (2, 3, 4, 6, 8)
EPISODES_PER_SIZE = 4000
NONE_SHARE = 0.5


def emoji_rows(manifest: Path, keep=lambda row: True) -> list[tuple[Path, str]]:
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(manifest.parent / row["image"], row["label"]) for row in rows if row.get("kind", "emoji") == "emoji"
            and keep(row)]


def photo_files(folder: Path, limit: int) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]


class Embedder:
    def __init__(self, model: ClipModel):
        self.model = model
        self.templates = resolve_templates(None, model.package.manifest.templates)
        self.background = background_embedding(model.text, self.templates)
        self._labels: dict[str, np.ndarray] = {}

    def images(self, files: list[Path]) -> np.ndarray:
        return self.model.image.encode_files([str(f) for f in files])

    def labels(self, names: list[str]) -> np.ndarray:
        missing = [n for n in dict.fromkeys(names) if n not in self._labels]
        if missing:
            for name, vector in zip(missing, ensemble_embeddings(self.model.text, missing, self.templates)):
                self._labels[name] = vector
        return np.stack([self._labels[n] for n in names])


def emoji_episodes(embedder: Embedder, rows: list[tuple[Path, str]], rng: np.random.Generator,
                   per_size: int = EPISODES_PER_SIZE) -> list[Episodes]:
    """Label sets drawn from the labels of `rows` themselves."""
    names = sorted({label for _, label in rows})
    index = {name: i for i, name in enumerate(names)}
    vectors = embedder.images([path for path, _ in rows])
    labels = np.array([index[label] for _, label in rows])
    label_vectors = embedder.labels(names)
    return [make_episodes(vectors, labels, label_vectors, embedder.background, size=size, count=per_size,
                          none_share=NONE_SHARE, rng=rng) for size in SIZES]


def photo_episodes(embedder: Embedder, files: list[Path], label_names: list[str], rng: np.random.Generator,
                   per_size: int) -> list[Episodes]:
    """Photos against emoji label sets: the right answer is always "none of these"."""
    vectors = embedder.images(files)
    label_vectors = embedder.labels(label_names)
    groups = []
    for size in SIZES:
        rows = rng.integers(0, len(vectors), per_size)
        sets = np.stack([rng.choice(len(label_names), size, replace=False) for _ in range(per_size)])
        scores = np.einsum("ed,ekd->ek", vectors[rows], label_vectors[sets])
        groups.append(Episodes(scores, vectors[rows] @ embedder.background, np.full(per_size, -1)))
    return groups


def measure(name: str, groups: list[Episodes], calibration: Calibration) -> dict:
    confidence, correct = map(np.concatenate, zip(*(chosen(group, calibration) for group in groups)))
    answered_none = np.concatenate([_answered_none(group, calibration) for group in groups])
    return {"set": name, "episodes": len(confidence), "ece": expected_calibration_error(confidence, correct),
            "accuracy": float(correct.mean()), "mean_confidence": float(confidence.mean()),
            "answered_none": float(answered_none.mean()), "table": reliability(confidence, correct)}


def _answered_none(group: Episodes, calibration: Calibration) -> np.ndarray:
    probabilities = outcome_probabilities(group, calibration)
    return probabilities[:, -1] >= probabilities[:, :-1].max(axis=1)


def draw_reliability(path: Path, before: dict, after: dict) -> None:
    """Two reliability diagrams side by side: bars of accuracy per confidence bin, the diagonal ideal."""
    size, margin = 360, 48
    image = Image.new("RGB", (2 * size + 3 * margin, size + 2 * margin), "white")
    draw = ImageDraw.Draw(image)
    for panel, (title, result) in enumerate((("before: the logit scale", before), ("after: fitted", after))):
        left, top = margin + panel * (size + margin), margin
        draw.rectangle((left, top, left + size, top + size), outline="black")
        draw.line((left, top + size, left + size, top), fill=(160, 160, 160), width=1)
        for lower, count, mean, accuracy in result["table"]:
            x0 = left + lower * size
            x1 = x0 + size / 15
            draw.rectangle((x0 + 1, top + size - accuracy * size, x1 - 1, top + size), fill=(70, 110, 200))
            draw.line((x0, top + size - mean * size, x1, top + size - mean * size), fill=(220, 60, 60), width=2)
        draw.text((left, top - 30), f"{title}", fill="black")
        draw.text((left, top - 16), f"ECE {result['ece']:.3f}, {result['episodes']:,} answers", fill="black")
        draw.text((left, top + size + 6), "confidence shown (0 to 1); bars: share right; red: mean shown",
                  fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(REPO / "resources" / "models" / "clipdesk-emoji-tiny"))
    parser.add_argument("--data", type=Path, default=REPO / "data")
    parser.add_argument("--write", action="store_true", help="store the fitted calibration in the manifest")
    parser.add_argument("--plot", type=Path, help="reliability diagram of the measured sets, as a PNG")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    package = load_package(args.model)
    embedder = Embedder(ClipModel(package, device="cpu"))
    styles = args.data / "eval-styles" / "unseen.jsonl"
    icons = args.data / "emoji-icons"

    apple = emoji_rows(styles, lambda row: row["style"] == "apple")
    facebook = emoji_rows(styles, lambda row: row["style"] == "facebook")
    val = emoji_rows(icons / "val.jsonl")
    heldout = emoji_rows(icons / "heldout.jsonl")
    emoji_labels = sorted({label for _, label in apple})
    fit_groups = emoji_episodes(embedder, apple, rng) + photo_episodes(
        embedder, photo_files(PHOTOS / "coco-mini", 400), emoji_labels, rng, EPISODES_PER_SIZE // 4)
    measured = {
        "Facebook-style emoji": emoji_episodes(embedder, facebook, rng),
        "validation split (emoji)": emoji_episodes(embedder, val, rng),
        "held-out concepts (emoji)": emoji_episodes(embedder, heldout, rng, 1000),
        "ImageNet-sample photos": photo_episodes(embedder, photo_files(PHOTOS / "imagenet-sample", 1000),
                                                 emoji_labels, rng, EPISODES_PER_SIZE // 4),
    }
    before = Calibration(min(float(package.manifest.logit_scale), MAX_TEMPERATURE))  # as without a calibration
    fitted = fit(fit_groups)
    print(f"model {package.name}; fitted on {len(apple):,} Apple-style emoji and 400 COCO photos: "
          f"temperature {fitted.temperature:.2f} (logit scale {before.temperature:.1f}), "
          f"none bias {fitted.none_margin:+.4f}")
    print(f"{'measured on':<28}{'answers':>9}{'ECE before':>12}{'ECE after':>11}{'accuracy':>10}"
          f"{'none before':>13}{'none after':>12}")
    results = {}
    for name, groups in measured.items():
        old, new = measure(name, groups, before), measure(name, groups, fitted)
        results[name] = new
        print(f"{name:<28}{new['episodes']:>9,}{old['ece']:>12.3f}{new['ece']:>11.3f}{new['accuracy']:>10.3f}"
              f"{old['answered_none']:>13.3f}{new['answered_none']:>12.3f}")
    every = [group for groups in measured.values() for group in groups]
    overall_before, overall_after = measure("all", every, before), measure("all", every, fitted)
    print(f"{'all measured sets':<28}{overall_after['episodes']:>9,}{overall_before['ece']:>12.3f}"
          f"{overall_after['ece']:>11.3f}{overall_after['accuracy']:>10.3f}")
    print("reliability after (bin, answers, mean confidence, share right):")
    for lower, count, mean, accuracy in overall_after["table"]:
        print(f"  {lower:.2f}-{lower + 1 / 15:.2f} {count:>7,} {mean:.3f} {accuracy:.3f}")
    if args.plot:
        draw_reliability(args.plot, overall_before, overall_after)
        print(f"wrote {args.plot}")
    if args.write:
        manifest = package.manifest
        manifest.calibration = {
            "temperature": round(fitted.temperature, 4), "none_bias": round(fitted.none_margin, 5),
            "fitted_on": f"{len(apple):,} Apple-style emoji (a style never trained on) and 400 COCO photos; "
                         f"label sets of {', '.join(map(str, SIZES))}; half the emoji without their label",
            "expected_calibration_error": {name: round(result["ece"], 4) for name, result in results.items()}
                                          | {"all": round(overall_after["ece"], 4)},
            "measured": _dt.date.today().isoformat(),
            "command": "python benchmarks/tagging_calibration.py --write",
        }
        save_manifest(package.path, manifest)
        print(f"wrote the calibration into {package.path / 'manifest.json'}")


if __name__ == "__main__":
    main()
