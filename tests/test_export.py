"""PyTorch → ONNX model packages: parity with PyTorch, precisions, dynamic batch and text length, no half-written
output."""

import numpy as np
import pytest
import torch

from clipdesk.errors import ClipdeskError
from clipdesk.model import ClipConfig, create_model
from clipdesk.model import onnx_export
from clipdesk.model.onnx_export import export_package
from clipdesk.runtime.encoders import ClipModel
from clipdesk.runtime.package import TEXT_INPUT, TEXT_OUTPUT, load_package, write_manifest
from clipdesk.runtime.tokenizer import get_tokenizer

SMALL_VIT = ClipConfig(embed_dim=32, image_resolution=32, vision_layers=2, vision_width=64, vision_patch_size=8,
                       vision_heads=2, context_length=16, vocab_size=49408, text_width=64, text_heads=2,
                       text_layers=2, activation="gelu")
SMALL_RESNET = ClipConfig(embed_dim=32, image_resolution=64, vision_layers=(1, 1, 1, 1), vision_width=8,
                          vision_patch_size=None, vision_heads=4, context_length=16, vocab_size=49408,
                          text_width=64, text_heads=1, text_layers=1, activation="quick_gelu")


def random_model(config, seed=0):
    torch.manual_seed(seed)
    model = create_model(config).eval()
    if not config.is_vit:  # fresh BatchNorm statistics are trivial; make them count
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return model


@pytest.mark.parametrize("config", [SMALL_VIT, SMALL_RESNET], ids=["vit", "resnet"])
def test_package_matches_pytorch_at_any_batch_size(tmp_path, config):
    model = random_model(config)
    package = export_package(model, tmp_path / "pkg", name="small", log=lambda _: None)
    verification = package.manifest.verification
    assert verification["image_max_abs_diff"] < 1e-4 and verification["text_max_abs_diff"] < 1e-4
    runtime = ClipModel(package, device="cpu")
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((5, 3, config.image_resolution, config.image_resolution)).astype(np.float32)
    ids = get_tokenizer()(["one", "two words", "", "a much longer caption than the others", "x"],
                          context_length=config.context_length)
    with torch.no_grad():
        expected_image = model.encode_image(torch.from_numpy(pixels)).numpy()
        expected_text = model.encode_text(torch.from_numpy(ids)).numpy()
    for batch_size in (1, 2, 5):
        image = runtime.image.encode_pixels(pixels, batch_size=batch_size, normalize=False)
        text = runtime.text.encode_ids(ids, batch_size=batch_size, normalize=False)
        np.testing.assert_allclose(image, expected_image, atol=1e-4)
        np.testing.assert_allclose(text, expected_text, atol=1e-4)
    normalised = runtime.text.encode(["two words"])
    np.testing.assert_allclose(np.linalg.norm(normalised, axis=1), 1.0, rtol=1e-5)
    assert package.manifest.architecture == config.to_dict()
    assert package.manifest.logit_scale == pytest.approx(1 / 0.07, rel=1e-5)


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_smaller_precisions_stay_close_and_shrink_the_files(tmp_path, precision):
    model = random_model(SMALL_VIT)
    full = export_package(model, tmp_path / "fp32", name="full", log=lambda _: None)
    small = export_package(model, tmp_path / precision, name="small", precision=precision, log=lambda _: None)
    assert small.manifest.precision == precision
    for file_name in ("image.onnx", "text.onnx"):
        assert small.manifest.files[file_name]["bytes"] < 0.6 * full.manifest.files[file_name]["bytes"]
    texts = ["a photo of a dog", "a diagram"]
    similarity = (ClipModel(full, "cpu").text.encode(texts) * ClipModel(small, "cpu").text.encode(texts)).sum(1)
    assert similarity.min() > (0.999 if precision == "fp16" else 0.95)


def test_failed_verification_leaves_nothing(tmp_path, monkeypatch):
    def broken_compare(reference, candidate):
        return 1.0, 0.5

    monkeypatch.setattr(onnx_export, "compare", broken_compare)
    with pytest.raises(ClipdeskError, match="does not match PyTorch"):
        export_package(random_model(SMALL_VIT), tmp_path / "out", name="x", log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_folder_is_not_overwritten(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(ClipdeskError, match="already exists"):
        export_package(random_model(SMALL_VIT), tmp_path / "out", name="x", log=lambda _: None)


QUERIES = ["red car", "", "kids on a beach at sunset with a dog and a kite", "a cat", "x y z"]


def record_text_runs(text_encoder):
    """Make the encoder's text graph record the shape of every batch it is given."""
    shapes, run = [], text_encoder._tower.run
    text_encoder._tower.run = lambda ids: shapes.append(ids.shape) or run(ids)
    return shapes


def cosines(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_text_graph_runs_cut_to_the_longest_query_of_each_batch(model):
    ids = model.text.tokenize(QUERIES)
    session = model.text._tower.session
    assert isinstance(session.get_inputs()[0].shape[1], str) and model.text.trims_padding
    full = session.run(None, {TEXT_INPUT: ids})[0]  # every row padded to context_length
    lengths = sorted(ids.argmax(1) + 1)  # start + words + end tokens
    assert lengths[-1] < ids.shape[1]
    shapes = record_text_runs(model.text)
    for batch_size in (1, 2, len(QUERIES)):
        shapes.clear()
        trimmed = model.text.encode_ids(ids, batch_size=batch_size, normalize=False)
        assert cosines(trimmed, full).min() >= 0.99999
        assert np.abs(trimmed - full).max() < 1e-5 * max(1.0, np.abs(full).max())
        # Rows of like length share a batch, and each batch runs as long as its longest row.
        chunks = [lengths[start:start + batch_size] for start in range(0, len(lengths), batch_size)]
        assert shapes == [(len(chunk), max(chunk)) for chunk in chunks]


def test_packages_with_a_fixed_text_length_still_work(tmp_path):
    """Packages exported before the text length was dynamic run on full-length rows, as they did."""
    model = random_model(SMALL_VIT)
    package = export_package(model, tmp_path / "pkg", name="old", log=lambda _: None)
    ids = get_tokenizer()(["one", "", "two words", "a longer caption than the others"],
                          context_length=SMALL_VIT.context_length)
    onnx_export._export_tower(onnx_export._Tower(model, "encode_text"), torch.from_numpy(ids[:2]),
                              package.text_path, TEXT_INPUT, TEXT_OUTPUT, {0: "batch"})  # the old export
    write_manifest(package.path, package.manifest)
    runtime = ClipModel(load_package(package.path), device="cpu")
    assert runtime.text._tower.session.get_inputs()[0].shape == ["batch", SMALL_VIT.context_length]
    assert not runtime.text.trims_padding
    shapes = record_text_runs(runtime.text)
    text = runtime.text.encode_ids(ids, batch_size=3, normalize=False)
    with torch.no_grad():
        expected = model.encode_text(torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(text, expected, atol=1e-4)
    assert shapes == [(3, SMALL_VIT.context_length), (1, SMALL_VIT.context_length)]
    assert onnx_export.verify_package(model, load_package(package.path)).text_min_cosine >= 0.99999


def test_the_models_templates_are_recorded_and_bad_ones_refused_before_any_work(tmp_path):
    model = random_model(SMALL_VIT)
    package = export_package(model, tmp_path / "pkg", name="x", templates=["an emoji of a {}.", "{}"],
                             log=lambda _: None)
    assert load_package(package.path).manifest.templates == ["an emoji of a {}.", "{}"]
    for bad in (["an emoji"], ["{} and {}"]):
        with pytest.raises(ClipdeskError, match="templates must be"):
            export_package(model, tmp_path / "bad", name="x", templates=bad, log=pytest.fail)
        assert not (tmp_path / "bad").exists()
