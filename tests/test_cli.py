"""The command line end to end: import the reference checkpoints, embed, compare with OpenAI's code."""

import importlib.util
import json
import pkgutil
import subprocess
import sys

import numpy as np
import pytest

from clipdesk import paths
from clipdesk.cli import main
from conftest import REFERENCE, reference_checkpoint, reference_expected


def run_cli(*args):
    return main([str(a) for a in args])


def cosine_rows(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


@pytest.mark.parametrize("name", ["openai-vit-tiny", "openai-rn-tiny"])
def test_imported_reference_checkpoint_matches_openai(tmp_path, capsys, name, reference_inputs):
    checkpoint = reference_checkpoint(name)
    expected = reference_expected(name)
    assert run_cli("model", "import", checkpoint, "--default") == 0
    manifest = json.loads((paths.models_dir() / name / "manifest.json").read_text())
    assert manifest["logit_scale"] == pytest.approx(float(expected["logit_scale"]), rel=1e-4)
    assert manifest["provenance"]["source_dtype"] == "float16"
    out = tmp_path / "features.npz"
    images = [REFERENCE / image for image in reference_inputs["images"]]
    texts = [arg for caption in reference_inputs["captions"] for arg in ("--text", caption)]
    assert run_cli("embed", *[a for image in images for a in ("--image", image)], *texts, "--out", out) == 0
    with np.load(out) as result:
        assert result["image"].shape == expected["image_features"].shape
        assert cosine_rows(result["image"], expected["image_features"]).min() >= 0.9999
        assert cosine_rows(result["text"], expected["text_features"]).min() >= 0.9999
        np.testing.assert_allclose(np.linalg.norm(result["text"], axis=1), 1.0, rtol=1e-5)

    listed = capsys.readouterr() and run_cli("model", "list", "--json")
    row = {row["name"]: row for row in json.loads(capsys.readouterr().out)}[name]
    assert listed == 0 and row["default"] and row["provider"] == "CPU"  # imported with --default
    assert row["embed_dim"] == 64 and row["image_size"] == 64


def test_package_text_features_match_pytorch_over_hundreds_of_hard_strings(tmp_path):
    """The 323 reference tokenizer strings through the exported ONNX text graph and through PyTorch."""
    import torch

    from clipdesk.model import build_model
    from clipdesk.runtime.encoders import load_model

    checkpoint = reference_checkpoint("openai-vit-tiny")
    assert run_cli("model", "export", checkpoint, tmp_path / "pkg") == 0
    strings = [json.loads(line)["text"] for line in (REFERENCE / "tokenizer.jsonl").read_text().splitlines()]
    runtime = load_model(tmp_path / "pkg")
    ids = runtime.text.tokenize(strings)
    model = build_model(torch.load(checkpoint, map_location="cpu", weights_only=True))
    with torch.no_grad():
        expected = model.encode_text(torch.from_numpy(ids)).numpy()
    assert len(strings) >= 300
    assert cosine_rows(runtime.text.encode_ids(ids, normalize=False), expected).min() >= 0.9999


def test_bad_inputs_exit_1_with_one_line(tmp_path, capsys, no_bundled_models):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00not a checkpoint" * 10)
    cases = [
        ("model", "import", tmp_path / "missing.pt"),
        ("model", "import", junk),
        ("embed", "--text", "x", "--out", tmp_path / "o.npz"),  # no model installed
        ("embed", "--model", "nonexistent", "--text", "x", "--out", tmp_path / "o.npz"),
        ("model", "default", "nonexistent"),
    ]
    for case in cases:
        capsys.readouterr()
        assert run_cli(*case) == 1, case
        error = capsys.readouterr().err.strip()
        assert error.startswith("clipdesk: error: ") and "\n" not in error, (case, error)
    assert not paths.models_dir().exists() or not any(paths.models_dir().iterdir())


def test_embed_reports_a_corrupt_image_by_name(tmp_path, capsys):
    from test_export import SMALL_VIT, random_model

    from clipdesk.model.onnx_export import export_package

    export_package(random_model(SMALL_VIT), tmp_path / "pkg", name="small", log=lambda _: None)
    broken = tmp_path / "broken photo ☀.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    assert run_cli("embed", "--model", tmp_path / "pkg", "--image", broken, "--out", tmp_path / "o.npz") == 1
    assert "broken photo ☀.jpg" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


def test_info_json_points_inside_clipdesk_home(capsys, clipdesk_home):
    assert run_cli("info", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    for key in ("data_dir", "database", "models_dir", "cache_dir", "settings"):
        assert info[key].startswith(str(clipdesk_home)), key
    assert info["version"]


def modules_of(*packages: str) -> list[str]:
    """Every module of the packages, found on disk (nothing imported): new modules are checked too."""
    return [f"{package}.{info.name}" for package in packages
            for info in pkgutil.iter_modules(importlib.util.find_spec(package).submodule_search_locations)]


# The run side (README): runtime, library, search, tagging and the commands; the GUI has its own tests.
RUN_SIDE_MODULES = ["clipdesk.cli", *modules_of("clipdesk.runtime", "clipdesk.hub", "clipdesk.library", "clipdesk.search",
                                                "clipdesk.tagging", "clipdesk.commands")]


def test_run_side_never_imports_torch(tmp_path, clipdesk_home):
    """Every run-side module, then `clipdesk embed`, `model list` and `info`, in a fresh interpreter; then
    check sys.modules."""
    assert {"clipdesk.library.indexer", "clipdesk.search.searcher", "clipdesk.tagging.suggest",
            "clipdesk.commands.index", "clipdesk.commands.tag"} <= set(RUN_SIDE_MODULES)
    from test_export import SMALL_VIT, random_model

    from clipdesk.model.onnx_export import export_package

    export_package(random_model(SMALL_VIT), tmp_path / "pkg", name="small", log=lambda _: None)
    image = tmp_path / "photo.png"
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 30, 30)).save(image)
    script = f"""
import sys, importlib
from clipdesk.cli import main
for module in {RUN_SIDE_MODULES!r}:
    importlib.import_module(module)
assert main(["embed", "--model", {str(tmp_path / 'pkg')!r}, "--image", {str(image)!r}, "--text", "red",
             "--out", {str(tmp_path / 'o.npz')!r}]) == 0
assert main(["model", "import", {str(tmp_path / 'pkg')!r}]) == 0
assert main(["model", "list"]) == 0 and main(["info"]) == 0
heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "onnx", "onnxscript", "transformers"))
print("HEAVY", heavy)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**__import__("os").environ, "CLIPDESK_HOME": str(clipdesk_home)})
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout, result.stdout


def test_huggingface_folder_imports_and_matches_transformers(tmp_path, capsys, reference_inputs):
    """A transformers CLIPModel folder through `model import` and `embed` (ONNX) vs get_*_features."""
    import torch
    from test_checkpoints import features, hf_clip

    from clipdesk.runtime.preprocess import OPENAI_MEAN, OPENAI_STD, load_image, preprocess_batch
    from clipdesk.runtime.tokenizer import get_tokenizer

    hf = hf_clip("gelu")
    hf.save_pretrained(tmp_path / "hf-clip")
    assert run_cli("model", "import", tmp_path / "hf-clip", "--name", "hf-small") == 0
    images = [REFERENCE / image for image in reference_inputs["images"]]
    captions = reference_inputs["captions"]
    out = tmp_path / "features.npz"
    assert run_cli("embed", "--model", "hf-small", *[a for i in images for a in ("--image", i)],
                   *[a for c in captions for a in ("--text", c)], "--out", out) == 0
    pixels = preprocess_batch([load_image(path) for path in images], 32, OPENAI_MEAN, OPENAI_STD)
    with torch.no_grad():
        expected_image = features(hf.get_image_features(pixel_values=torch.from_numpy(pixels))).numpy()
        expected_text = features(hf.get_text_features(input_ids=torch.from_numpy(get_tokenizer()(captions)))).numpy()
    with np.load(out) as result:
        assert cosine_rows(result["image"], expected_image).min() >= 0.9999
        assert cosine_rows(result["text"], expected_text).min() >= 0.9999
    manifest = json.loads((paths.models_dir() / "hf-small" / "manifest.json").read_text())
    assert manifest["architecture"]["activation"] == "gelu"
    assert manifest["provenance"]["source_format"] == "huggingface"


def test_an_exported_package_records_its_checkpoint_by_name_and_hash_not_where_it_lay(tmp_path):
    """`model export` makes packages for elsewhere (the bundled model among them): no path of this machine."""
    import hashlib

    import torch
    from test_export import SMALL_VIT, random_model

    checkpoint = tmp_path / "weights" / "small.pt"
    checkpoint.parent.mkdir()
    torch.save(random_model(SMALL_VIT).state_dict(), checkpoint)
    assert run_cli("model", "export", checkpoint, tmp_path / "pkg", "--activation", "gelu") == 0
    text = (tmp_path / "pkg" / "manifest.json").read_text()
    provenance = json.loads(text)["provenance"]
    assert "checkpoint" not in provenance and str(tmp_path) not in text
    assert provenance["source"] == "small.pt"
    assert provenance["source_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
