"""Training data: manifests, tar shards, bad rows, deterministic order and views, run-side pixels."""

import gzip
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from clipdesk.errors import ClipdeskError
from clipdesk.runtime.preprocess import OPENAI_MEAN, OPENAI_STD, load_image, preprocess
from clipdesk.train.augment import NormalisationTable, random_resized_crop, training_view
from clipdesk.train.data import (
    EpochBatches, EvalSet, RowProblems, TrainingSet, collate, expand_braces, read_source,
)
from test_train_support import shapes, write_shards  # noqa: F401  (fixture)


def write_manifest(folder, rows):
    path = folder / "train.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_manifest_rows_paths_and_bad_rows(tmp_path):
    (tmp_path / "img").mkdir()
    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (20, 20), (200, 10, 10)).save(tmp_path / "img" / name)
    manifest = write_manifest(tmp_path, [
        {"image": "img/a.png", "caption": " a red square "},
        {"image": "img/b.png", "captions": ["one", "", "two"], "label": "red"},
        "{not json",
        {"image": "img/c.png"},  # no caption
        {"caption": "no image field"},
        {"image": "img/missing.png", "caption": "gone"},
        "",
        {"image": str(tmp_path / "img" / "c.png"), "caption": "absolute path"},
    ])
    source = read_source(str(manifest))
    assert [s.captions for s in source.samples] == [("a red square",), ("one", "two"), ("absolute path",)]
    assert [s.label for s in source.samples] == [None, "red", None]
    assert source.samples[0].image == str(tmp_path / "img" / "a.png")
    assert source.problems.counts == {"not JSON": 1, "no caption": 1, "no image field": 1, "missing image": 1}
    assert source.problems.total == 4
    assert "train.jsonl:3 (not JSON)" in source.problems.summary()


def test_unreadable_images_are_skipped_counted_once_and_batches_shrink(tmp_path):
    Image.new("RGB", (20, 20), "blue").save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    manifest = write_manifest(tmp_path, [{"image": "good.png", "caption": "blue"},
                                         {"image": "bad.png", "caption": "x"}])
    samples = read_source(str(manifest)).samples
    dataset = TrainingSet(samples, 16, 8, seed=0, min_crop_scale=0.7)
    batch = collate([dataset[(0, 0)], dataset[(0, 1)]])
    assert batch.pixels.shape == (1, 16, 16, 3) and batch.pixels.dtype == torch.uint8
    assert batch.second.shape == (1, 8)
    assert [(s.reason, s.where) for s in batch.skipped] == [("unreadable image", "train.jsonl:2")]
    problems = RowProblems()
    for epoch in range(3):  # met again every epoch, counted once
        skipped = dataset[(epoch, 1)]
        problems.add(skipped.reason, skipped.where, skipped.detail)
    assert problems.total == 1
    assert RowProblems.from_dict(problems.to_dict()).to_dict() == problems.to_dict()


def test_shards_read_like_the_manifest(shapes, tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(shapes["train"].parent / "train", folder / "train")
    manifest = folder / "train.jsonl"
    shutil.copy(shapes["train"], manifest)
    write_shards(manifest, "shard-{:03d}.tar", per_shard=20)
    from_manifest = read_source(str(manifest)).samples
    for spec in (str(folder / "shard-{000..002}.tar"), str(folder)):
        from_shards = read_source(spec).samples
        assert [(s.captions, s.label) for s in from_shards] == [(s.captions, s.label) for s in from_manifest]
    dataset = EvalSet(from_shards, 32, OPENAI_MEAN, OPENAI_STD)
    reference = EvalSet(from_manifest, 32, OPENAI_MEAN, OPENAI_STD)
    for index in (0, 25, 47):
        np.testing.assert_array_equal(dataset[index][0], reference[index][0])


def test_compressed_or_missing_shards_are_refused_in_one_line(tmp_path):
    (tmp_path / "a.tar").write_bytes(gzip.compress(b"x" * 1000))
    with pytest.raises(ClipdeskError, match="not an uncompressed tar shard"):
        read_source(str(tmp_path / "a.tar"))
    with pytest.raises(ClipdeskError, match="no such shard"):
        read_source(str(tmp_path / "b-{0..1}.tar"))
    with pytest.raises(ClipdeskError, match="no such manifest"):
        read_source(str(tmp_path / "nothing.jsonl"))


def test_brace_patterns():
    assert expand_braces("s-{008..011}.tar") == ["s-008.tar", "s-009.tar", "s-010.tar", "s-011.tar"]
    assert expand_braces("{a,b}/x-{1..2}.tar") == ["a/x-1.tar", "a/x-2.tar", "b/x-1.tar", "b/x-2.tar"]


def test_epoch_order_is_fixed_by_seed_and_epoch_and_split_between_processes():
    whole = EpochBatches(100, 20, seed=7)
    whole.set_epoch(3)
    first = list(whole)
    whole.set_epoch(3)
    assert list(whole) == first and len(first) == 5
    whole.set_epoch(4)
    assert list(whole) != first
    rows = [row for batch in first for _, row in batch]
    assert len(set(rows)) == 100
    other_seed = EpochBatches(100, 20, seed=8)
    other_seed.set_epoch(3)
    assert list(other_seed) != first
    shares = [EpochBatches(100, 20, seed=7, rank=r, world_size=2) for r in (0, 1)]
    for share in shares:
        share.set_epoch(3, start_batch=2)  # a resumed epoch skips the batches already trained
    for batch, left, right in zip(first[2:], *shares):
        assert left + right == batch and len(left) == 10
    with pytest.raises(ClipdeskError, match="not divisible"):
        EpochBatches(100, 21, seed=0, world_size=2)
    with pytest.raises(ClipdeskError, match="larger than the 100"):
        EpochBatches(100, 128, seed=0)


def test_training_views_are_deterministic_per_epoch_and_row(shapes):
    samples = read_source(str(shapes["train"])).samples
    dataset = TrainingSet(samples, 32, 16, seed=0, min_crop_scale=0.7)
    pixels, ids = dataset[(2, 5)]
    again, ids_again = dataset[(2, 5)]
    np.testing.assert_array_equal(pixels, again)
    np.testing.assert_array_equal(ids, ids_again)
    assert not np.array_equal(dataset[(3, 5)][0], pixels)
    captions = {tuple(dataset[(epoch, 5)][1]) for epoch in range(12)}
    assert len(captions) > 1  # one of the row's captions is drawn per epoch


def test_augmentation_keeps_left_and_right_and_colours():
    # Red left half, blue right half: no flip may swap them, no jitter may turn red into another hue.
    array = np.zeros((60, 80, 3), np.uint8)
    array[:, :40] = (220, 30, 30)
    array[:, 40:] = (30, 30, 220)
    image = Image.fromarray(array)
    for seed in range(30):
        view = training_view(image, 32, np.random.default_rng(seed), min_scale=0.7).astype(int)
        left, right = view[:, :4].mean((0, 1)), view[:, -4:].mean((0, 1))
        assert left[0] > left[2] + 100 and right[2] > right[0] + 100
    for seed in range(30):  # the crop keeps at least min_scale of the area (rounded to pixels)
        rng = np.random.default_rng(seed)
        crop = random_resized_crop(Image.new("RGB", (100, 100)), 10, rng, min_scale=0.7)
        assert crop.size == (10, 10)


def test_pixels_match_the_run_side_preprocessing_exactly(tmp_path):
    rng = np.random.default_rng(0)
    table = NormalisationTable(OPENAI_MEAN, OPENAI_STD)
    square = Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8))
    ours = table(torch.from_numpy(np.array(square))[None])[0].numpy()
    np.testing.assert_array_equal(ours, preprocess(square, 24, OPENAI_MEAN, OPENAI_STD))
    # Validation images go through the run side itself: transparency ends up on white.
    rgba = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    rgba.paste((10, 200, 10, 255), (10, 5, 30, 25))
    rgba.save(tmp_path / "t.png")
    manifest = write_manifest(tmp_path, [{"image": "t.png", "caption": "green"}])
    pixels, row = EvalSet(read_source(str(manifest)).samples, 24, OPENAI_MEAN, OPENAI_STD)[0]
    np.testing.assert_array_equal(pixels, preprocess(load_image(tmp_path / "t.png"), 24, OPENAI_MEAN, OPENAI_STD))
    white = (1 - np.asarray(OPENAI_MEAN)) / np.asarray(OPENAI_STD)
    np.testing.assert_allclose(pixels[:, 0, 0], white, rtol=1e-6)
