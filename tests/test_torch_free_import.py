"""Checkpoints become model packages in a process where torch cannot be imported, as in the installed app.

The process under test is `clipdesk` started with torch blocked (`sys.modules["torch"] = None` makes every
`import torch` fail). Its packages are then held to independent oracles in this process: the features
OpenAI's reference code computed (tests/fixtures/reference), transformers' own CLIPModel, and clipdesk's
PyTorch CLIP, which the reference fixtures pin in turn (test_checkpoints.py).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REFERENCE, reference_checkpoint, reference_expected
from PIL import Image
from test_checkpoints import (
    Payload, compare_with_hf, evil_pickles, features, hf_clip, randomized, resnet_config, token_ids, torchscript_zip,
)

from clipdesk import paths
from clipdesk.checkpoint.architecture import CONFIGS, state_dict_shapes
from clipdesk.model import build_model, create_model
from clipdesk.model.checkpoints import load_checkpoint
from clipdesk.runtime.encoders import ImageEncoder, TextEncoder
from clipdesk.runtime.package import load_package
from clipdesk.runtime.preprocess import preprocess_batch

WITHOUT_TORCH = "import sys; sys.modules['torch'] = None; from clipdesk.cli import main; sys.exit(main(sys.argv[1:]))"
PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"


def clipdesk_without_torch(*args):
    result = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, *map(str, args)], capture_output=True,
                            text=True, timeout=300, env=os.environ.copy())
    assert "Traceback" not in result.stderr, result.stderr
    return result


def export_without_torch(checkpoint, out_dir, *options):
    result = clipdesk_without_torch("model", "export", checkpoint, out_dir, *options)
    assert result.returncode == 0, result.stderr
    return load_package(out_dir)


def min_cosine(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def hard_strings():
    return [json.loads(line)["text"] for line in (REFERENCE / "tokenizer.jsonl").read_text().splitlines()]


def photos(count=6):
    found = sorted(p for p in PHOTOS.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:count]
    assert len(found) == count, f"expected real photos in {PHOTOS}"
    return [Image.open(p).convert("RGB") for p in found]


def assert_matches_torch(package, model, *, strings=None):
    """Images (real photos through the package's preprocessing) and text (hundreds of hard strings by
    default) agree with the PyTorch model holding the same weights."""
    manifest = package.manifest
    pixels = preprocess_batch(photos(), manifest.image_resolution, manifest.mean, manifest.std)
    ids = package_tokenizer(package)(strings or hard_strings())
    with torch.no_grad():
        want_image = model.encode_image(torch.from_numpy(pixels)).numpy()
        want_text = model.encode_text(torch.from_numpy(ids).long()).numpy()
    got_image = ImageEncoder(package, device="cpu").encode_pixels(pixels, normalize=False)
    got_text = TextEncoder(package, device="cpu").encode_ids(ids, normalize=False)
    assert min_cosine(got_image, want_image) >= 0.9999
    assert min_cosine(got_text, want_text) >= 0.9999
    return got_image, got_text


def package_tokenizer(package):
    from clipdesk.runtime.tokenizer import get_tokenizer

    return lambda texts: get_tokenizer()(texts, context_length=package.manifest.context_length)


# ------------------------------------------------------------------ OpenAI's own random checkpoints


@pytest.mark.parametrize("name", ["openai-vit-tiny", "openai-rn-tiny"])
def test_openai_fp16_state_dicts_embed_like_the_reference_code(tmp_path, name):
    checkpoint = reference_checkpoint(name)
    expected = reference_expected(name)
    package = export_without_torch(checkpoint, tmp_path / "pkg")
    image = ImageEncoder(package, device="cpu").encode_pixels(expected["pixels"], normalize=False)
    text = TextEncoder(package, device="cpu").encode_ids(expected["token_ids"], normalize=False)
    assert min_cosine(image, expected["image_features"]) >= 0.9999
    assert min_cosine(text, expected["text_features"]) >= 0.9999
    np.testing.assert_allclose(image, expected["image_features"], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(text, expected["text_features"], atol=1e-4, rtol=1e-4)
    assert package.manifest.logit_scale == pytest.approx(float(expected["logit_scale"]), rel=1e-6)
    assert package.manifest.provenance["source_dtype"] == "float16"
    # Hundreds of hard strings and real photos, against clipdesk's PyTorch CLIP on the same weights.
    source = load_checkpoint(checkpoint)
    assert_matches_torch(package, build_model(source.state_dict, "quick_gelu"))


@pytest.mark.parametrize("name", ["openai-vit-tiny", "openai-rn-tiny"])
def test_the_same_weights_as_openclip_safetensors_embed_the_same(tmp_path, name):
    from safetensors.torch import save_file

    checkpoint = reference_checkpoint(name)
    expected = reference_expected(name)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    folder = tmp_path / "openclip-hub-folder"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "open_clip_model.safetensors"))
    vision = ({"width": 64, "layers": 2, "patch_size": 16} if "vit" in name
              else {"width": 16, "layers": [1, 1, 1, 1]})  # heads: OpenCLIP's default head width of 64
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": {
        "embed_dim": 64, "quick_gelu": True, "vision_cfg": {**vision, "image_size": 64},
        "text_cfg": {"width": 64, "heads": 1, "layers": 2}}}))
    for source in (folder / "open_clip_model.safetensors", folder):  # the file alone, and the hub's folder
        package = export_without_torch(source, tmp_path / f"pkg-{source.name}")
        assert package.manifest.provenance["source_format"] == "safetensors"
        image = ImageEncoder(package, device="cpu").encode_pixels(expected["pixels"], normalize=False)
        text = TextEncoder(package, device="cpu").encode_ids(expected["token_ids"], normalize=False)
        assert min_cosine(image, expected["image_features"]) >= 0.9999
        assert min_cosine(text, expected["text_features"]) >= 0.9999


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # tracing is how the archive is made
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("activation", ["quick_gelu", "gelu"])
def test_an_openai_torchscript_archive_in_half_precision(tmp_path, activation):
    """OpenAI's released form: a traced fp16 archive, read without running it; its code names the activation."""
    from test_checkpoints import trace, vit_config

    model = randomized(create_model(vit_config(activation)))
    trace(model, 32).half().save(str(tmp_path / "ViT-tiny.pt"))
    package = export_without_torch(tmp_path / "ViT-tiny.pt", tmp_path / "pkg")
    assert package.manifest.provenance["source_format"] == "openai-torchscript"
    assert package.manifest.architecture["activation"] == activation
    assert_matches_torch(package, model.half().float(), strings=hard_strings()[:60])


@pytest.mark.parametrize("activation", ["quick_gelu", "gelu"])
def test_a_transformers_clipmodel_folder_embeds_like_transformers(tmp_path, activation):
    hf = hf_clip(activation, seed=5)
    hf.save_pretrained(tmp_path / "hf")
    package = export_without_torch(tmp_path / "hf", tmp_path / "pkg")
    assert package.manifest.architecture["activation"] == activation  # from config.json, not a guess
    torch.manual_seed(3)
    pixels = torch.randn(4, 3, 32, 32)
    ids = token_ids(3)
    with torch.no_grad():
        want_image = features(hf.get_image_features(pixel_values=pixels)).numpy()
        want_text = features(hf.get_text_features(input_ids=ids)).numpy()
    got_image = ImageEncoder(package, device="cpu").encode_pixels(pixels.numpy(), normalize=False)
    got_text = TextEncoder(package, device="cpu").encode_ids(ids.numpy(), normalize=False)
    assert min_cosine(got_image, want_image) >= 0.9999 and min_cosine(got_text, want_text) >= 0.9999
    np.testing.assert_allclose(got_image, want_image, atol=1e-4)
    np.testing.assert_allclose(got_text, want_text, atol=1e-4)
    compare_with_hf(load_checkpoint(tmp_path / "hf"), hf)  # and the torch path agrees with both


def test_a_resnet_with_trained_batch_norm_statistics(tmp_path):
    """Random BatchNorm statistics and scales everywhere: a swapped mean and variance would show."""
    model = randomized(create_model(resnet_config()))
    torch.save(model.state_dict(), tmp_path / "rn.pt")
    package = export_without_torch(tmp_path / "rn.pt", tmp_path / "pkg")
    assert_matches_torch(package, model, strings=hard_strings()[:40])


@pytest.mark.parametrize("precision, floor", [("fp16", 0.999), ("int8", 0.95)])
def test_narrower_precisions_are_held_to_the_fp32_graphs(tmp_path, precision, floor):
    checkpoint = reference_checkpoint("openai-vit-tiny")
    expected = reference_expected("openai-vit-tiny")
    fp32 = export_without_torch(checkpoint, tmp_path / "fp32")
    package = export_without_torch(checkpoint, tmp_path / precision, "--precision", precision)
    assert package.manifest.precision == precision
    verification = package.manifest.verification
    assert min(verification["image_min_cosine_vs_fp32"], verification["text_min_cosine_vs_fp32"]) >= floor
    text = TextEncoder(package, device="cpu").encode_ids(expected["token_ids"], normalize=False)
    assert min_cosine(text, expected["text_features"]) >= floor
    # The weights are what shrinks.
    size = lambda p: sum(f.stat().st_size for f in p.path.glob("*.onnx"))  # noqa: E731
    assert size(package) < size(fp32) * (0.6 if precision == "fp16" else 0.4)


def test_the_graphs_are_valid_onnx_with_the_state_dict_names(tmp_path):
    onnx = pytest.importorskip("onnx")
    checkpoint = reference_checkpoint("openai-rn-tiny")
    for precision in ("fp32", "fp16", "int8"):
        package = export_without_torch(checkpoint, tmp_path / precision, "--precision", precision)
        names = set()
        for graph_file in ("image.onnx", "text.onnx"):
            graph = onnx.load(str(package.path / graph_file))
            onnx.checker.check_model(graph, full_check=True)
            names |= {node.output[0] for node in graph.graph.node} | {i.name for i in graph.graph.initializer}
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        used = {k for k in state if k.endswith(("running_mean", "ln_final.weight", "conv1.weight"))}
        assert used <= names, used - names


# --------------------------------------------------------------------------- one architecture home


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_named_config_has_the_shapes_of_the_torch_model(name):
    with torch.device("meta"):
        model = create_model(CONFIGS[name])
    assert state_dict_shapes(CONFIGS[name]) == {k: tuple(v.shape) for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------------- bad input


def test_bad_checkpoints_are_refused_without_torch(tmp_path):
    """Malicious, truncated, legacy and junk files: one line each, nothing run, nothing left behind."""
    marker = tmp_path / "pwned"
    bad = tmp_path / "bad"
    bad.mkdir()
    torchscript_zip(bad / "evil-script.pt", evil_pickles(marker)["os.system"])
    torch.save({"state_dict": Payload(os.system, f"touch {marker}")}, bad / "evil-save.pt")
    whole = reference_checkpoint("openai-vit-tiny").read_bytes()
    (bad / "truncated.pt").write_bytes(whole[: len(whole) // 2])
    torch.save({"a.weight": torch.ones(2)}, bad / "legacy.pt", _use_new_zipfile_serialization=False)
    (bad / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}" + b"\0" * 64)
    (bad / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    expected = {"evil-script.pt": "nothing was run", "evil-save.pt": "nothing was run",
                "truncated.pt": "truncated", "legacy.pt": "legacy format", "junk.safetensors": "damaged",
                "random.pt": "not a checkpoint"}
    for file_name, phrase in expected.items():
        result = clipdesk_without_torch("model", "import", bad / file_name, "--name", "x")
        message = result.stderr.strip().splitlines()
        assert result.returncode == 1 and phrase in result.stderr, (file_name, result.stderr)
        assert message[-1].startswith("clipdesk: error:") and str(bad / file_name) in message[-1], result.stderr
    assert not marker.exists()
    assert not any(Path(os.environ["CLIPDESK_HOME"]).rglob("manifest.json"))



def test_a_full_vit_b32_shaped_checkpoint_imports(tmp_path):
    """151 M parameters (fp16 safetensors, 289 MB), as the real OpenAI ViT-B/32: the importer's memory and
    time stay those of one model (benchmarks/checkpoint_import.py measures them)."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    state = {key: (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)
             for key, shape in state_dict_shapes(CONFIGS["ViT-B/32"]).items()}
    state["logit_scale"] = np.array(4.6052, np.float32)
    save_file(state, str(tmp_path / "ViT-B-32.safetensors"))
    result = clipdesk_without_torch("model", "import", tmp_path / "ViT-B-32.safetensors", "--activation", "quick_gelu")
    assert result.returncode == 0, result.stderr
    package = load_package(paths.models_dir() / "ViT-B-32")
    assert (package.manifest.embed_dim, package.manifest.image_resolution) == (512, 224)
    assert package.manifest.architecture == CONFIGS["ViT-B/32"].to_dict()
    assert package.manifest.logit_scale == pytest.approx(100.0, rel=1e-3)
