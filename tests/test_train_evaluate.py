"""Zero-shot accuracy, retrieval recall, label sets and the PNG plots."""

import numpy as np
import pytest
import torch
from PIL import Image

from clipdesk.errors import ClipdeskError
from clipdesk.train.evaluate import read_labels, retrieval_recall, top_k_accuracy
from clipdesk.train.plots import PALETTE, Series, line_chart, nice_ticks, write_training_plots


def unit(rows):
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float32), dim=-1)


def test_top_k_accuracy_counts_the_true_label_among_the_best_k():
    classes = torch.eye(6)
    # Image i is nearest to class i, then to class i+1, ...: a known ranking per image.
    image = unit([[1.0 if j == i else 0.5 ** ((j - i) % 6) for j in range(6)] for i in range(6)])
    targets = torch.tensor([0, 2, 2, 3, 0, 5])  # correct at rank 1, 2, 1, 1, 3, 1
    accuracy = top_k_accuracy(image, targets, classes, ks=(1, 2, 5))
    assert accuracy == {1: pytest.approx(4 / 6), 2: pytest.approx(5 / 6), 5: pytest.approx(1.0)}


def test_retrieval_recall_with_shared_captions():
    # Three images; texts 0 and 1 are distinct captions, text 1 belongs to images 1 and 2.
    image = unit([[1, 0, 0], [0, 1, 0], [0, 0.9, 0.1]])
    text = unit([[1, 0, 0], [0, 0.2, 1]])
    image_texts = [[0], [1], [1]]
    recall = retrieval_recall(image, text, image_texts, ks=(1, 2))
    # image→text: each image's nearest text is its own caption.
    assert recall["image_to_text_r1"] == pytest.approx(1.0)
    # text→image: text 1 is nearest to image 2 (0.30, then image 1 at 0.20); both are correct for it.
    assert recall["text_to_image_r1"] == pytest.approx(1.0)
    wrong = retrieval_recall(image, text, [[1], [0], [0]], ks=(1, 2))
    assert wrong["image_to_text_r1"] == 0.0 and wrong["image_to_text_r2"] == 1.0
    assert wrong["text_to_image_r1"] == 0.0 and wrong["text_to_image_r2"] == pytest.approx(0.5)


def test_labels_from_a_file_or_a_list(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("red circle\n\nblue square\nred circle\n")
    assert read_labels(str(path)) == ["red circle", "blue square"]
    assert read_labels("cat, dog ,cat") == ["cat", "dog"]
    with pytest.raises(ClipdeskError, match="no labels"):
        read_labels(" , ")


def test_nice_ticks_cover_the_data():
    assert nice_ticks(1, 16) == [0, 5, 10, 15, 20]
    assert nice_ticks(2.5, 4.43) == [2.5, 3.0, 3.5, 4.0, 4.5]
    assert nice_ticks(3, 3)[0] <= 3 <= nice_ticks(3, 3)[-1]


def test_line_chart_draws_the_data_where_it_belongs(tmp_path):
    path = line_chart(tmp_path / "c.png", "rising", [Series("y = x", [0, 10], [0, 10])], "x")
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    drawn = np.all(np.abs(pixels - np.array(PALETTE[0])) < 30, axis=-1)
    rows, columns = np.nonzero(drawn[:, : pixels.shape[1] - 200])  # leave the legend out
    assert len(columns) > 100
    left, right = columns < np.median(columns), columns > np.median(columns)
    assert rows[left].mean() > rows[right].mean() + 100  # a rising line: lower on the left (larger y)


def test_training_plots_are_written_from_the_log(tmp_path):
    steps = [{"step": s, "loss": 4 - s / 10, "logit_scale": 14 + s} for s in range(1, 30)]
    epochs = [{"epoch": e, "zero_shot_top1": 0.1 * e, "zero_shot_top5": 0.2 * e, "zero_shot_chance": 0.05,
               "image_to_text_r1": 0.1, "text_to_image_r1": 0.1, "image_to_text_r5": 0.3, "text_to_image_r5": 0.3}
              for e in range(3)]
    written = write_training_plots(tmp_path, steps, epochs)
    assert [p.name for p in written] == ["loss.png", "temperature.png", "zero_shot.png", "retrieval.png"]
    assert all(Image.open(p).size == (760, 440) for p in written)
    assert [p.name for p in write_training_plots(tmp_path / "only-steps", steps, [])] == ["loss.png", "temperature.png"]
