"""Open-set scoring: "none of these" with known embeddings, calibration and the temperature."""

import numpy as np
import pytest

from clipdesk.tagging.calibration import MAX_TEMPERATURE, Calibration, open_set_probabilities
from clipdesk.tagging.classifier import LabelClassifier

DIM = 24


def unit(matrix):
    matrix = np.asarray(matrix, np.float64)
    return (matrix / np.linalg.norm(matrix, axis=-1, keepdims=True)).astype(np.float32)


def classifier(margin=0.0, temperature=100.0, open_set=True):
    """Labels on axes 0..2, the background on axis 3, every embedding sharing a common component
    (as CLIP's do) so that plain cosines are all fairly high."""
    common = np.zeros(DIM)
    common[10] = 1.0
    text = unit(np.eye(DIM)[:3] * 0.5 + common)
    background = unit(np.eye(DIM)[3] * 0.5 + common)
    return LabelClassifier(("cat", "dog", "bird"), text, np.zeros(3, np.float32), background if open_set else None,
                           Calibration(temperature, margin))


def photo(*weights):
    vector = np.zeros(DIM)
    vector[10] = 1.0
    vector[: len(weights)] += weights
    return unit(vector)


def test_a_photo_of_a_label_gets_it_and_a_photo_of_nothing_listed_gets_none():
    model = classifier()
    images = np.stack([photo(0.6), photo(0, 0, 0.6), photo(0, 0, 0, 0.2, 0), photo(0, 0, 0, 0, 0.8)])
    predictions = model.predict(images)
    best, confidence = predictions.best()
    assert best.tolist() == [0, 2, -1, -1]  # the last two: nothing like a label (axis 4 is no label at all)
    np.testing.assert_allclose(predictions.probabilities.sum(1) + predictions.none, 1.0, atol=1e-9)
    assert confidence[0] > 0.9 and predictions.none[2] > 0.9
    assert predictions.none[3] == pytest.approx(0.25)  # a four-way tie: no label is better than the background
    assert predictions.ranked(0)[0][0] == "cat" and [s for _, s in predictions.ranked(0)] == \
        sorted((s for _, s in predictions.ranked(0)), reverse=True)


def test_closed_set_always_picks_a_label():
    images = np.stack([photo(0, 0, 0, 0, 0.8)])
    predictions = classifier().closed_set().predict(images)
    assert predictions.best()[0].tolist() == [predictions.probabilities.argmax()]
    np.testing.assert_allclose(predictions.probabilities.sum(1), 1.0)
    assert predictions.none.tolist() == [0.0]


def test_the_none_margin_moves_photos_to_none_and_never_the_other_way():
    images = unit(np.random.default_rng(0).standard_normal((200, DIM)) * 0.4 + photo())
    nones = [int((classifier(margin).predict(images).best()[0] < 0).sum()) for margin in (-0.05, 0.0, 0.02, 0.1)]
    assert nones == sorted(nones) and nones[0] < nones[-1]


def test_temperature_sharpens_without_changing_the_order():
    scores = np.array([[0.30, 0.25, 0.20]])
    soft, _ = open_set_probabilities(scores, np.array([0.22]), Calibration(10.0))
    sharp, _ = open_set_probabilities(scores, np.array([0.22]), Calibration(100.0))
    assert soft.argmax() == sharp.argmax() == 0 and sharp[0, 0] > soft[0, 0]


@pytest.mark.parametrize("scale, expected", [(100.0, 100.0), (14.3, 14.3), (4000.0, MAX_TEMPERATURE),
                                             (float("nan"), MAX_TEMPERATURE), (-1.0, MAX_TEMPERATURE)])
def test_the_temperature_is_the_models_logit_scale_within_clip_s_clamp(scale, expected):
    class Package:
        class manifest:  # no fitted calibration: the logit scale decides
            logit_scale = scale
            calibration = None

    assert Calibration.for_model(Package).temperature == pytest.approx(expected)
