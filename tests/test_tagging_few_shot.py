"""Few-shot learning from confirmed examples: never below zero-shot, better with more examples.

The fixture is synthetic with known structure (tests need answers that can be checked): labels whose
text embeddings partly describe similar labels, photos with shared nuisance directions, as in
benchmarks/tagging_kshot.py but small.
"""

import json

import numpy as np
import pytest

from clipdesk.tagging.calibration import Calibration
from clipdesk.tagging.classifier import LabelClassifier
from clipdesk.tagging.few_shot import adapt, select_examples
from clipdesk.tagging.lbfgs import minimize
from conftest import benchmark_module


@pytest.fixture(scope="module")
def kshot():
    with benchmark_module("tagging_kshot") as module:
        yield module


def synthetic_data(kshot):
    return kshot.synthetic(7, clutter=0.2, prompt_bias=0.8, nuisance=1.2, labels=8, per_label=40, dim=96, group=4)


@pytest.fixture(scope="module")
def data(kshot):
    return synthetic_data(kshot)


def zero_shot(data, background=None):
    return LabelClassifier(data.names, data.text, np.zeros(len(data.text), np.float32), background, Calibration(100.0))


def accuracy(classifier, data):
    return float((classifier.scores(data.images[data.test]).argmax(1) == data.labels[data.test]).mean())


def test_lbfgs_finds_the_minimum_of_a_badly_scaled_quadratic():
    scales = np.array([1.0, 100.0, 1e4])
    target = np.array([3.0, -2.0, 0.5])
    solution, iterations = minimize(lambda x: (float(0.5 * (scales * (x - target) ** 2).sum()),
                                               scales * (x - target)), np.zeros(3))
    np.testing.assert_allclose(solution, target, rtol=1e-3)
    assert iterations < 100


def test_without_examples_the_classifier_is_exactly_zero_shot(data):
    classifier = zero_shot(data)
    assert adapt(classifier, np.zeros((0, data.images.shape[1])), np.zeros(0, int), data.images.mean(0)) is classifier


# The margins below (+0.05, +0.1) are regression figures: they were set under what this seeded benchmark
# measured on clipdesk's own code, not derived independently. After a change to few_shot.py, classifier.py
# or benchmarks/tagging_kshot.py, re-derive them: `python tests/test_tagging_few_shot.py` prints both curves;
# keep each margin under the measured gap (on this code: 0.21 over zero-shot at k=8, 0.11 over the
# prototypes at k=4 with half the labels taught). The other assertions (never below zero-shot, zero-shot at
# k=0, the probe below zero-shot at k=1) are properties, not figures.
def curve(kshot, data):
    return kshot.evaluate(data, shots=(0, 1, 2, 4, 8), draws=3, seed=1)


def uneven_curve(kshot, data):
    return kshot.evaluate(data, shots=(0, 1, 4), draws=3, uneven=True, seed=2)


@pytest.mark.regression
def test_the_curve_starts_at_zero_shot_never_falls_below_and_rises(data, kshot):
    results = curve(kshot, data)
    ours, zero = np.asarray(results["clipdesk"]), results["zero-shot"][0]
    assert ours[0] == zero
    assert np.all(ours[1:] >= zero), results
    assert ours[-1] > zero + 0.05 and ours[-1] > ours[1], results
    # the paper's observation, reproduced: a probe on one example per label is far below zero-shot
    assert results["linear probe"][1] < zero


@pytest.mark.regression
def test_labels_without_examples_keep_their_photos_when_others_learn(data, kshot):
    results = uneven_curve(kshot, data)
    assert min(results["clipdesk"]) >= results["zero-shot"][0], results
    # labels without examples may lose a few photos to labels that learned, but not many
    assert min(results["clipdesk, labels without examples"]) >= results["zero-shot, labels without examples"][0] - 0.05
    assert results["clipdesk"][-1] > results["prototypes"][-1] + 0.1  # prototypes cannot name the other labels


def test_the_average_photo_keeps_its_zero_shot_scores_and_examples_move_toward_their_label(data):
    classifier = zero_shot(data, background=data.background)
    center = data.images.mean(0)
    rows = data.pool[data.labels[data.pool] == 3][:4]
    adapted = adapt(classifier, data.images[rows], np.full(len(rows), 3), center)
    np.testing.assert_allclose(adapted.scores(center[None]), classifier.scores(center[None]), atol=1e-5)
    test_rows = data.test[data.labels[data.test] == 3]
    before = classifier.predict(data.images[test_rows]).probabilities[:, 3].mean()
    after = adapted.predict(data.images[test_rows]).probabilities[:, 3].mean()
    assert after > before
    np.testing.assert_array_equal(adapted.zero_shot_weights, classifier.weights)
    with pytest.raises(ValueError):
        adapt(adapted, data.images[rows], np.full(len(rows), 3), center)


def test_labels_without_examples_keep_their_share_of_the_library(data):
    """Examples sharpen their labels, which then take photos from the labels that have none (on the bundled
    model's embeddings, all of them); a common offset on the labels that learned gives those photos back."""
    classifier = zero_shot(data, background=data.background)
    learned = [0, 1, 2, 3]
    rows = data.pool[np.isin(data.labels[data.pool], learned)]
    library = np.delete(data.images, rows, axis=0)
    args = (classifier, data.images[rows], data.labels[rows], data.images.mean(0))
    kept, unshifted = adapt(*args, library=library), adapt(*args)

    def won_by_others(model):
        return int((~np.isin(model.scores(library).argmax(1), learned)).sum())

    assert won_by_others(unshifted) < won_by_others(classifier)
    assert won_by_others(kept) == won_by_others(classifier)
    np.testing.assert_array_equal(kept.weights, unshifted.weights)
    shift = unshifted.offsets - kept.offsets
    assert np.all(shift[learned] > 0) and np.all(shift[4:] == 0) and np.ptp(shift[learned]) < 1e-6
    # every label with examples: there is no share to keep
    every = adapt(classifier, data.images[data.pool], data.labels[data.pool], data.images.mean(0),
                  library=np.delete(data.images, data.pool, axis=0))
    np.testing.assert_array_equal(every.offsets, adapt(classifier, data.images[data.pool], data.labels[data.pool],
                                                       data.images.mean(0)).offsets)


def test_examples_are_capped_per_label_evenly_and_deterministically():
    labels = np.array([0] * 10 + [1] * 3)
    kept = select_examples(labels, max_per_label=4)
    assert kept.tolist() == [0, 3, 6, 9, 10, 11, 12]


def test_the_benchmark_plot_is_a_png(kshot, tmp_path):
    results = {"zero-shot": [0.5, 0.5], "linear probe": [float("nan"), 0.3], "clipdesk": [0.5, 0.6]}
    kshot.plot([("a", results), ("b", results)], tmp_path / "k.png", shots=(0, 1))
    from PIL import Image

    with Image.open(tmp_path / "k.png") as image:
        assert image.format == "PNG" and image.width == 840
    assert "monotone: True" in kshot.verdict(results)


def test_the_benchmark_runs_on_a_model_and_a_manifest_split_by_style(kshot, tiny_model_package, tmp_path, capsys):
    """Mechanics only (the tiny model's embeddings mean nothing): examples and test images come from
    different styles, and the run prints its tables and saves the plot."""
    from PIL import Image

    rows = []
    for label, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200)]):
        for style in range(4):
            name = f"images/{label}-{style}.png"
            (tmp_path / "images").mkdir(exist_ok=True)
            Image.new("RGB", (32, 32), tuple(min(255, c + 12 * style) for c in colour)).save(tmp_path / name)
            rows.append({"image": name, "label": f"label {label}", "kind": "emoji", "style": f"style {style}"})
    rows.append({"image": "images/0-0.png", "label": "an icon", "kind": "icon", "style": "style 0"})
    manifest = tmp_path / "heldout.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))

    data = kshot.load_manifest(manifest, str(tiny_model_package), "emoji", 64)
    assert len(data.names) == 5 and len(data.labels) == 20  # the icon row is another kind
    pool, test = kshot.split_by_style(data, np.random.default_rng(0))
    assert len(pool) == len(test) == 10 and not set(data.styles[pool]) & set(data.styles[test])

    plot = tmp_path / "k.png"
    assert kshot.main(["--model", str(tiny_model_package), "--manifest", str(manifest), "--kind", "emoji",
                       "--seeds", "2", "--draws", "1", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    for heading in ("every label with examples: mean over seeds", "half the labels with examples: median",
                    "Templates at k = 0", "Open set with templates model: 4-label sets"):
        assert heading in out
    assert plot.stat().st_size > 0


if __name__ == "__main__":  # the figures the regression margins above were set from
    with benchmark_module("tagging_kshot") as module:
        synthetic = synthetic_data(module)
        for name, measure in (("every label", curve), ("half the labels with examples", uneven_curve)):
            print(f"{name}: {json.dumps(measure(module, synthetic))}")
