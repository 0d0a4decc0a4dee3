"""`clipdesk model get` of weight-only hub repositories (the openclip and transformers layouts, and any
OWNER/REPO outside the catalog), converted without torch, against the models the weights came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hub_standin import StandInHub
from test_checkpoints import hf_clip, randomized, vit_config
from test_model_get import (
    HARD_STRINGS, PHOTOS, _embed, _get, _run, _without_torch, catalog_entry, error_lines, hf_features,
)
from test_cli import cosine_rows

from clipdesk import paths
from clipdesk.model import create_model
from clipdesk.runtime.registry import model_entries
from clipdesk.runtime.preprocess import load_image, preprocess_batch
from clipdesk.runtime.tokenizer import get_tokenizer

MODEL_CARD = b"---\nlicense: mit\ntags:\n- clip\n---\n# A test model\n"


def folder_bytes(folder) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def hf_repo(tmp_path_factory):
    hf = hf_clip("gelu", seed=7)
    folder = tmp_path_factory.mktemp("hf")
    hf.save_pretrained(folder)  # config.json + model.safetensors
    return hf, {**folder_bytes(folder), "README.md": MODEL_CARD}


def test_a_transformers_repository_in_the_catalog_equals_the_transformers_model(hf_repo, monkeypatch, tmp_path):
    hf, files = hf_repo
    entry = catalog_entry("tiny-hf-weights", "tester/clip-hf", "transformers",
                          {"weights": "model.safetensors", "config": "config.json"})
    package = _get({"tester/clip-hf": files}, monkeypatch, tmp_path, entry)
    manifest = json.loads((package / "manifest.json").read_text())
    assert manifest["architecture"]["activation"] == "gelu"
    assert manifest["provenance"]["hub"]["repo"] == "tester/clip-hf"
    assert set(manifest["files"]) == {"image.onnx", "text.onnx"}
    got = _embed("tiny-hf-weights", tmp_path, HARD_STRINGS)
    image, text = hf_features(hf, manifest["mean"], manifest["std"])
    assert cosine_rows(got["image"], image).min() >= 0.9999
    assert cosine_rows(got["text"], text).min() >= 0.9999
    assert not list((paths.data_dir() / "downloads").iterdir())  # cleaned up once installed


@pytest.fixture
def openclip_hub(tmp_path, monkeypatch):
    """`tester/openclip-tiny` (openclip_repo) on a stand-in hub that HF_ENDPOINT names; yields the model."""
    folder = tmp_path / "openclip-repo"
    folder.mkdir()
    model, files = openclip_repo(folder)
    server = StandInHub({"tester/openclip-tiny": files})
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    yield model
    server.close()


def openclip_repo(tmp_path):
    """An OpenCLIP hub folder: weights, open_clip_config.json (GELU: no quick_gelu; its own mean and std)."""
    from safetensors.torch import save_file

    model = randomized(create_model(vit_config("gelu")))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "open_clip_model.safetensors"))
    config = {"model_cfg": {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64,
                                                            "head_width": 64, "patch_size": 8},
                            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1,
                                         "layers": 2}},
              "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}
    (tmp_path / "open_clip_config.json").write_text(json.dumps(config))
    return model, {**folder_bytes(tmp_path), "README.md": MODEL_CARD, "LICENSE": b"MIT License\n"}


@pytest.mark.parametrize("variant", [None, "fp16"])
def test_any_openclip_repository_by_its_name(openclip_hub, tmp_path, variant):
    """OWNER/REPO outside the catalog: the file list says OpenCLIP, its config says GELU and the mean/std,
    the model card says the licence."""
    model = openclip_hub
    result = _run(_without_torch("model", "get", "tester/openclip-tiny", "--yes",
                                 *(["--variant", variant] if variant else [])))
    assert result.returncode == 0, result.stderr
    name = "openclip-tiny" + (f"-{variant}" if variant else "")
    assert f"installed {name}" in result.stdout and "MIT License" in result.stderr
    manifest = json.loads((paths.models_dir() / name / "manifest.json").read_text())
    assert manifest["license"] == "mit" and manifest["mean"] == [0.5, 0.5, 0.5]
    assert manifest["architecture"]["activation"] == "gelu" and manifest["precision"] == (variant or "fp32")
    got = _embed(name, tmp_path, HARD_STRINGS)
    pixels = preprocess_batch([load_image(p) for p in PHOTOS], 32, [0.5] * 3, [0.5] * 3)
    with torch.no_grad():
        image = model.encode_image(torch.from_numpy(pixels)).numpy()
        text = model.encode_text(torch.from_numpy(get_tokenizer()(HARD_STRINGS, context_length=77))).numpy()
    floor = 0.9999 if variant is None else 0.999
    assert cosine_rows(got["image"], image).min() >= floor
    assert cosine_rows(got["text"], text).min() >= floor


def test_a_repository_without_clip_weights_is_refused_in_one_line(monkeypatch):
    server = StandInHub({"tester/not-clip": {"README.md": MODEL_CARD, "weights.h5": b"\x89HDF" + b"\0" * 4096}})
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    try:
        result = _run(_without_torch("model", "get", "tester/not-clip", "--yes"))
    finally:
        server.close()
    errors = error_lines(result.stderr)
    assert result.returncode == 1 and len(errors) == 1, result.stderr
    assert "holds no OpenCLIP or transformers CLIP weights" in errors[0] and "weights.h5" in errors[0]
    assert not paths.models_dir().exists() or not any(paths.models_dir().iterdir())


def test_the_shipped_catalog_has_weight_only_entries():
    from clipdesk.runtime.catalog import load_catalog

    catalog = load_catalog()
    weights = {entry.repo: entry for entry in catalog.values() if entry.layout in ("openclip", "transformers")}
    assert {"laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "openai/clip-vit-large-patch14"} <= set(weights)
    assert weights["openai/clip-vit-large-patch14"].sha256["weights"] == (
        "a2bf730a0c7debf160f7a6b50b3aaf3703e7e88ac73de7a314903141db026dcb")


def test_not_enough_room_to_convert_is_said_before_converting(openclip_hub, monkeypatch, capsys):
    """The weights are downloaded, then the disk is found too small for the graphs: one line, the download
    kept for the next try, nothing installed."""
    import shutil as shutil_module

    from clipdesk.cli import main
    from clipdesk.runtime import model_get

    real = shutil_module.disk_usage

    def small_once_downloaded(path):
        usage = real(path)
        if Path(path) == paths.models_dir():
            return usage._replace(free=1000)
        return usage

    monkeypatch.setattr(model_get.shutil, "disk_usage", small_once_downloaded)
    assert main(["model", "get", "tester/openclip-tiny", "--yes"]) == 1
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "not enough free disk space to convert openclip-tiny" in errors[0], errors
    assert "openclip-tiny" not in model_entries()
    assert any((paths.data_dir() / "downloads").rglob("open_clip_model.safetensors"))
