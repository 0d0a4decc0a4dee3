"""benchmarks/zero_shot_eval.py: the confidence interval its reports print beside each accuracy."""
from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import benchmark_module


@pytest.fixture(scope="module")
def evaluation():
    with benchmark_module("zero_shot_eval") as module:
        yield module


@pytest.mark.parametrize("correct,total", [(67, 257), (126, 257), (1, 40), (500, 1000)])
def test_wilson_interval_ends_where_the_score_test_reaches_z(evaluation, correct, total):
    # Wilson's interval is the set of proportions p the score test does not reject:
    # |p̂ - p| / sqrt(p(1-p)/n) <= z, with equality at both ends.
    low, high = evaluation.wilson_interval(correct, total)
    share = correct / total
    assert low < share < high
    for end in (low, high):
        assert abs(share - end) / math.sqrt(end * (1 - end) / total) == pytest.approx(evaluation.Z95, rel=1e-9)


def test_wilson_interval_at_the_edges_and_on_no_images(evaluation):
    low, high = evaluation.wilson_interval(0, 50)
    assert low == 0.0 and 0.05 < high < 0.1
    low, high = evaluation.wilson_interval(50, 50)
    assert high == pytest.approx(1.0) and 0.9 < low < 0.95
    with pytest.raises(ValueError):
        evaluation.wilson_interval(0, 0)


def test_a_result_carries_counts_and_intervals(evaluation):
    result = evaluation._result(np.arange(257) < 67, np.arange(257) < 126, 132, style="all")
    assert (result["top1_correct"], result["top5_correct"]) == (67, 126)
    assert result["top1_ci95"] == evaluation.wilson_interval(67, 257)
    assert result["top1_ci95"][0] < 0.25 < result["top1_ci95"][1]  # the held-out target sits inside


@pytest.mark.parametrize("gained,lost,expected", [
    (0, 0, 1.0), (5, 5, 1.0), (10, 0, 2 / 1024),
    (7, 3, 2 * (1 + 10 + 45 + 120) / 1024),  # n = 10, both tails up to 3
])
def test_mcnemar_p_is_the_two_sided_binomial_tail_of_the_discordant_images(evaluation, gained, lost, expected):
    assert evaluation.mcnemar_p(gained, lost) == pytest.approx(expected)
    assert evaluation.mcnemar_p(lost, gained) == pytest.approx(expected)


def test_compare_counts_images_gained_and_lost(evaluation):
    old = ({"top1": 0.5, "top5": 0.75}, np.array([1, 1, 0, 0], bool), np.array([1, 1, 1, 0], bool))
    new = ({"top1": 0.5, "top5": 1.0}, np.array([1, 0, 1, 0], bool), np.array([1, 1, 1, 1], bool))
    paired = evaluation.compare(old, new)
    assert (paired["top1"]["gained"], paired["top1"]["lost"]) == (1, 1)
    assert (paired["top5"]["gained"], paired["top5"]["lost"]) == (1, 0)
    assert paired["top5"]["mcnemar_p"] == 1.0
    with pytest.raises(SystemExit):
        evaluation.compare(old, (new[0], new[1][:3], new[2][:3]))


def test_by_vocabulary_splits_the_figures_by_whether_the_label_words_were_read(evaluation):
    rows = [{"label": "cat face"}, {"label": "Penguin"}, {"label": "T-Rex"}, {"label": "face"}]
    top1, top5 = np.array([1, 0, 0, 1], bool), np.array([1, 1, 0, 1], bool)
    split = evaluation.by_vocabulary(({"classes": 10}, top1, top5, rows), {"cat", "face", "t", "rex"})
    known, unknown = split["known_words"], split["unknown_words"]
    assert (known["images"], known["top1_correct"], known["top5_correct"]) == (3, 2, 2)
    assert (unknown["images"], unknown["top1_correct"], unknown["top5_correct"]) == (1, 0, 1)
    assert "unknown_words" not in evaluation.by_vocabulary(({"classes": 10}, top1, top5, rows),
                                                           {"cat", "face", "t", "rex", "penguin"})
