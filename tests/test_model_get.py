"""`clipdesk model get`: catalog entries fetched from a local stand-in hub (tests/hub_standin.py), resumed,
verified and registered; each published layout equals the PyTorch model it was exported from."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hub_standin import StandInHub
from PIL import Image
from test_cli import cosine_rows, run_cli
from test_export import SMALL_VIT, random_model

from clipdesk import paths
from clipdesk.model.onnx_export import _export_tower, _Tower
from clipdesk.runtime.preprocess import OPENAI_MEAN, OPENAI_STD, load_image, preprocess_batch
from clipdesk.runtime.tokenizer import get_tokenizer

REPO_ROOT = Path(__file__).resolve().parents[1]
KNOWN_ANSWER = REPO_ROOT / "resources" / "known-answer"
PHOTOS = sorted(KNOWN_ANSWER.glob("*.jpg"))
HARD_STRINGS = ["a photo of a dog", "", "kids on a beach at sunset", "東京の夜景 🌃", "Größe & <b>bold</b>",
                "an extremely long caption " + "that keeps going " * 30]
RCLIP_CONFIG = SMALL_VIT.__class__(**{**SMALL_VIT.to_dict(), "context_length": 77})
RCLIP_REPO = "tester/rclip-models"
RCLIP_DIR = "ViT-tiny-random"


def export_rclip(model, folder: Path) -> dict[str, bytes]:
    """rclip's convert_model.py layout: `input` -> `output`, int64 ids (N, 77), dynamic batch, raw features."""
    folder.mkdir(parents=True, exist_ok=True)
    size = model.config.image_resolution
    _export_tower(_Tower(model, "encode_image"), torch.zeros(1, 3, size, size), folder / "visual.onnx", "input", "output",
                  {0: "batch"})
    _export_tower(_Tower(model, "encode_text"), torch.zeros(1, 77, dtype=torch.long), folder / "textual.onnx", "input",
                  "output", {0: "batch"})
    return {f"{RCLIP_DIR}/visual.onnx": (folder / "visual.onnx").read_bytes(),
            f"{RCLIP_DIR}/textual.onnx": (folder / "textual.onnx").read_bytes(),
            "LICENSE": b"MIT License\n\nCopyright (c) the testers\n"}


def catalog_entry(name, repo, layout, files, **extra) -> dict:
    return {"name": name, "title": f"{name} (random weights)", "about": "A test model with random weights.",
            "repo": repo, "revision": "main", "layout": layout, "files": files, "image_size": 32,
            "context_length": 77, "licence": "MIT", "download_mb": 1, "known_answer": False,
            "imagenet_zero_shot": {"top1": None, "source": "none: random weights"}, **extra}


def write_catalog(folder: Path, *entries) -> Path:
    path = folder / "catalog.json"
    path.write_text(json.dumps({"format": 1, "models": list(entries)}), encoding="utf-8")
    return path


def rclip_test_model():
    return random_model(RCLIP_CONFIG, seed=3)


@pytest.fixture(scope="module")
def rclip_model():
    return rclip_test_model()


@pytest.fixture(scope="module")
def rclip_files(rclip_model, tmp_path_factory):
    return export_rclip(rclip_model, tmp_path_factory.mktemp("rclip"))


@pytest.fixture
def hub(rclip_files, monkeypatch):
    server = StandInHub({RCLIP_REPO: dict(rclip_files)})
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    yield server
    server.close()


@pytest.fixture
def rclip_catalog(tmp_path):
    return write_catalog(tmp_path, catalog_entry(
        "tiny-rclip", RCLIP_REPO, "rclip",
        {"image": f"{RCLIP_DIR}/visual.onnx", "text": f"{RCLIP_DIR}/textual.onnx"}, licence_files=["LICENSE"]))


def _without_torch(*cli_args) -> list[str]:
    """A fresh interpreter in which `import torch` fails, running the clipdesk CLI."""
    script = ("import sys; sys.modules['torch'] = None; from clipdesk.cli import main; "
              f"sys.exit(main({[str(a) for a in cli_args]!r}))")
    return [sys.executable, "-c", script]


def _run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env={**os.environ}, **kwargs)


def error_lines(captured: str) -> list[str]:
    """The lines the CLI prints for a failure (the lines before them say what is being fetched)."""
    return [line for line in captured.strip().splitlines() if line.startswith("clipdesk:")]


def torch_features(model, pixels, texts):
    with torch.no_grad():
        image = model.encode_image(torch.from_numpy(pixels)).numpy()
        text = model.encode_text(torch.from_numpy(get_tokenizer()(texts, context_length=77))).numpy()
    return image, text


def test_rclip_model_is_got_without_torch_and_embeds_like_its_torch_model(hub, rclip_catalog, rclip_model, tmp_path):
    result = _run(_without_torch("model", "get", "tiny-rclip", "--catalog", rclip_catalog, "--yes", "--default"))
    assert result.returncode == 0, result.stderr
    assert "installed tiny-rclip" in result.stdout
    assert "MIT License" in result.stderr  # the licence file, shown before the download
    manifest = json.loads((paths.models_dir() / "tiny-rclip" / "manifest.json").read_text())
    assert manifest["io"]["text"]["input"] == "input" and manifest["io"]["text"]["dtype"] == "int64"
    assert manifest["provenance"]["commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert set(manifest["files"]) == {f"{RCLIP_DIR}/visual.onnx", f"{RCLIP_DIR}/textual.onnx", "LICENSE"}
    assert manifest["verification"]["photos_per_second"] > 0 and manifest["verification"]["provider"] == "CPU"
    assert "photos/s on this machine's CPU" in result.stderr
    out = tmp_path / "features.npz"
    result = _run(_without_torch("embed", "--model", "tiny-rclip", *[a for p in PHOTOS for a in ("--image", p)],
                                 *[a for t in HARD_STRINGS for a in ("--text", t)], "--out", out))
    assert result.returncode == 0, result.stderr
    pixels = preprocess_batch([load_image(p) for p in PHOTOS], 32, OPENAI_MEAN, OPENAI_STD)
    expected_image, expected_text = torch_features(rclip_model, pixels, HARD_STRINGS)
    with np.load(out) as got:
        assert cosine_rows(got["image"], expected_image).min() >= 0.9999
        assert cosine_rows(got["text"], expected_text).min() >= 0.9999
    assert not list((paths.data_dir() / "downloads").iterdir())  # cleaned up once installed


def test_download_killed_midway_resumes_with_a_range_request_in_a_new_process(hub, rclip_catalog):
    hub.bytes_per_second = 3_000_000  # the text graph (13 MB) takes a few seconds: time to kill it midway
    part = paths.data_dir() / "downloads" / "tester--rclip-models@default" / RCLIP_DIR / "textual.onnx.part"
    process = subprocess.Popen(_without_torch("model", "get", "tiny-rclip", "--catalog", rclip_catalog, "--yes"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (part.exists() and part.stat().st_size > 1_000_000):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    kept = part.stat().st_size
    assert 1_000_000 < kept < len(hub.repos[RCLIP_REPO][f"{RCLIP_DIR}/textual.onnx"])
    assert not (paths.models_dir() / "tiny-rclip").exists()

    hub.bytes_per_second = None
    result = _run(_without_torch("model", "get", "tiny-rclip", "--catalog", rclip_catalog, "--yes"))
    assert result.returncode == 0, result.stderr
    ranges = [entry["range"] for entry in hub.requests("cdn", "GET") if entry["range"]]
    assert ranges and int(ranges[0].split("=")[1].rstrip("-")) >= kept
    assert run_cli("model", "verify", "tiny-rclip") == 0


def test_a_tampered_file_is_refused_and_nothing_is_registered(hub, rclip_catalog, capsys):
    hub.tamper.add(f"{RCLIP_REPO}/{RCLIP_DIR}/textual.onnx")
    assert run_cli("model", "get", "tiny-rclip", "--catalog", rclip_catalog, "--yes") == 1
    error = error_lines(capsys.readouterr().err)
    assert len(error) == 1 and "not the published one" in error[0] and "SHA-256" in error[0]
    assert not (paths.models_dir() / "tiny-rclip").exists()
    assert not list(paths.data_dir().rglob("textual.onnx*"))  # the bad bytes are not kept for a resume


def test_a_pinned_hash_that_differs_from_the_hub_is_refused(hub, tmp_path, capsys):
    catalog = write_catalog(tmp_path, catalog_entry(
        "tiny-rclip", RCLIP_REPO, "rclip", {"image": f"{RCLIP_DIR}/visual.onnx", "text": f"{RCLIP_DIR}/textual.onnx"},
        sha256={"text": "0" * 64}))
    assert run_cli("model", "get", "tiny-rclip", "--catalog", catalog, "--yes") == 1
    assert "another file than the catalog pins" in capsys.readouterr().err
    assert not (paths.models_dir() / "tiny-rclip").exists()


def test_missing_repository_and_missing_file_each_give_one_line(hub, tmp_path, capsys):
    files = {"image": f"{RCLIP_DIR}/visual.onnx", "text": f"{RCLIP_DIR}/textual.onnx"}
    catalog = write_catalog(tmp_path, catalog_entry("no-repo", "tester/nothing-here", "rclip", files),
                            catalog_entry("no-file", RCLIP_REPO, "rclip", {**files, "text": "ViT-x/textual.onnx"}))
    assert run_cli("model", "get", "no-repo", "--catalog", catalog, "--yes") == 1
    assert run_cli("model", "get", "no-file", "--catalog", catalog, "--yes") == 1
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 2
    assert "has no repository 'tester/nothing-here'" in lines[0]
    assert "has no file 'ViT-x/textual.onnx'" in lines[1]
    assert not paths.models_dir().exists() or not any(p.name in ("no-repo", "no-file") for p in paths.models_dir().iterdir())


def test_offline_gives_one_line_and_leaves_nothing(rclip_catalog, monkeypatch, capsys):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    assert run_cli("model", "get", "tiny-rclip", "--catalog", rclip_catalog, "--yes") == 1
    error = error_lines(capsys.readouterr().err)
    assert len(error) == 1 and "cannot reach the model hub" in error[0]
    assert not (paths.models_dir() / "tiny-rclip").exists()


def test_not_enough_disk_space_is_said_before_any_download(hub, rclip_catalog, monkeypatch, capsys):
    import shutil as real_shutil

    usage = real_shutil.disk_usage("/")
    monkeypatch.setattr("clipdesk.runtime.model_get.shutil.disk_usage",
                        lambda path: usage._replace(free=1_000_000))
    assert run_cli("model", "get", "tiny-rclip", "--catalog", rclip_catalog, "--yes") == 1
    assert "not enough free disk space" in capsys.readouterr().err
    assert not hub.requests("cdn")


def test_a_cancelled_download_keeps_its_part_and_the_next_get_resumes(hub, rclip_catalog):
    from clipdesk.hub.client import DownloadCancelled
    from clipdesk.progress import Progress
    from clipdesk.runtime.catalog import find_entry, load_catalog
    from clipdesk.runtime.model_get import get_model

    class CancelAfterFirstBytes(Progress):
        def update(self, done, total, **facts):
            if done > 50_000:
                self.cancel()

    hub.bytes_per_second = 2_000_000
    entry = find_entry("tiny-rclip", load_catalog(rclip_catalog)).choose(None)
    with pytest.raises(DownloadCancelled):
        get_model(entry, progress=CancelAfterFirstBytes(), log=lambda _: None)
    assert not (paths.models_dir() / "tiny-rclip").exists()
    hub.bytes_per_second = None
    package = get_model(entry, log=lambda _: None)
    assert package.name == "tiny-rclip"
    assert any(entry["range"] for entry in hub.requests("cdn", "GET"))


def test_a_random_model_fails_the_known_answer_check_with_its_figures(hub, tmp_path, capsys):
    catalog = write_catalog(tmp_path, catalog_entry(
        "tiny-rclip", RCLIP_REPO, "rclip", {"image": f"{RCLIP_DIR}/visual.onnx", "text": f"{RCLIP_DIR}/textual.onnx"},
        known_answer=True))
    assert run_cli("model", "get", "tiny-rclip", "--catalog", catalog, "--yes") == 1
    error = capsys.readouterr().err
    assert "fails the known-answer check" in error and "cat.jpg: expected 'cat'" in error
    assert not (paths.models_dir() / "tiny-rclip").exists()


def test_the_shipped_catalog_lists_the_recommended_photo_model(capsys):
    assert run_cli("model", "catalog", "--json") == 0
    entries = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert entries["ViT-B-32-256-datacomp"]["recommended"] and entries["ViT-B-32-256-datacomp"]["layout"] == "rclip"
    assert {"fp16", "quantized"} <= set(entries["openai-ViT-B-32"]["variants"])
    assert any("multilingual" in entry["languages"] for entry in entries.values())
    for entry in entries.values():
        towers = {"weights"} if entry["layout"] in ("openclip", "transformers") else {"image", "text"}
        assert towers <= set(entry["files"]) and entry["licence"] and entry["download_mb"] > 0
        assert "source" in entry["imagenet_zero_shot"]




# --- the other published layouts, each against the PyTorch model it was exported from ---

def _get(hub_repos, monkeypatch, tmp_path, entry) -> Path:
    """Serve `hub_repos` on a stand-in hub and `model get` the entry with torch unimportable; returns the package."""
    server = StandInHub(hub_repos)
    try:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        catalog = write_catalog(tmp_path, entry)
        result = _run(_without_torch("model", "get", entry["name"], "--catalog", catalog, "--yes"))
        assert result.returncode == 0, result.stderr
    finally:
        server.close()
    return paths.models_dir() / entry["name"]


def _embed(name, tmp_path, texts) -> dict[str, np.ndarray]:
    out = tmp_path / f"{name}.npz"
    result = _run(_without_torch("embed", "--model", name, *[a for p in PHOTOS for a in ("--image", p)],
                                 *[a for t in texts for a in ("--text", t)], "--out", out))
    assert result.returncode == 0, result.stderr
    with np.load(out) as data:
        return {key: data[key] for key in data.files}


def _onnx_bytes(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_transformers_js_layout_equals_the_transformers_model(monkeypatch, tmp_path):
    """transformers.js exports (optimum): pixel_values -> image_embeds, input_ids -> text_embeds, raw."""
    from test_checkpoints import features, hf_clip

    hf = hf_clip("gelu")
    vision = Graph(hf, lambda model, pixel_values: features(model.get_image_features(pixel_values=pixel_values)))
    text_tower = Graph(hf, lambda model, input_ids: features(model.get_text_features(input_ids=input_ids)))
    folder = tmp_path / "xenova" / "onnx"
    folder.mkdir(parents=True)
    _export_tower(vision, torch.zeros(2, 3, 32, 32), folder / "vision_model.onnx", "pixel_values", "image_embeds",
                  {0: "batch_size"})
    _export_tower(text_tower, torch.from_numpy(get_tokenizer()(["a photo", "two words"], context_length=77)),
                  folder / "text_model.onnx", "input_ids", "text_embeds", {0: "batch_size", 1: "sequence_length"})
    entry = catalog_entry("tiny-xenova", "tester/clip-tiny", "transformers.js",
                          {"image": "onnx/vision_model.onnx", "text": "onnx/text_model.onnx"})
    _get({"tester/clip-tiny": _onnx_bytes(tmp_path / "xenova")}, monkeypatch, tmp_path, entry)
    got = _embed("tiny-xenova", tmp_path, HARD_STRINGS)
    image, text = hf_features(hf, OPENAI_MEAN, OPENAI_STD)
    assert cosine_rows(got["image"], image).min() >= 0.9999
    assert cosine_rows(got["text"], text).min() >= 0.9999


def hf_features(hf, mean, std):
    """A transformers CLIPModel's own features of PHOTOS (preprocessed with `mean`, `std`) and HARD_STRINGS."""
    from test_checkpoints import features

    pixels = preprocess_batch([load_image(p) for p in PHOTOS], 32, mean, std)
    with torch.no_grad():
        image = features(hf.get_image_features(pixel_values=torch.from_numpy(pixels))).numpy()
        text = features(hf.get_text_features(
            input_ids=torch.from_numpy(get_tokenizer()(HARD_STRINGS, context_length=77)))).numpy()
    return image, text


class Graph(torch.nn.Module):
    """`forward(model, *inputs)` over `model` as one module, so that its weights export with the graph."""

    def __init__(self, model: torch.nn.Module, forward):
        super().__init__()
        self.model, self._forward = model, forward

    def forward(self, *inputs):
        return self._forward(self.model, *inputs)


def normalised_image_graph(model) -> Graph:
    """Immich's image graph: the image tower with the L2 normalisation inside."""
    return Graph(model, lambda clip, image: torch.nn.functional.normalize(clip.encode_image(image), dim=-1))


def _save_external(path: Path) -> None:
    """Weights as one external-data file per tensor beside the graph, as Immich's large exports are."""
    import onnx

    graph = onnx.load(str(path))
    for stale in path.parent.iterdir():
        if stale != path:
            stale.unlink()
    onnx.save_model(graph, str(path), save_as_external_data=True, all_tensors_to_one_file=False,
                    size_threshold=1024)


def test_immich_layout_fixed_batch_int32_normalised_external_data_squash(rclip_model, monkeypatch, tmp_path):
    """Immich's export: image -> embedding and int32 text -> embedding, both L2-normalised in the graph, batch
    fixed at 1, weights in external-data files; preprocess_cfg.json asks for squash resizing (bilinear)."""
    root = tmp_path / "immich"
    (root / "visual").mkdir(parents=True)
    (root / "textual").mkdir()
    _export_tower(normalised_image_graph(rclip_model), torch.zeros(1, 3, 32, 32), root / "visual" / "model.onnx",
                  "image", "embedding", {})
    text_graph = Graph(rclip_model,
                       lambda model, text: torch.nn.functional.normalize(model.encode_text(text.long()), dim=-1))
    _export_tower(text_graph, torch.zeros(1, 77, dtype=torch.int32), root / "textual" / "model.onnx", "text",
                  "embedding", {})
    _save_external(root / "textual" / "model.onnx")
    (root / "visual" / "preprocess_cfg.json").write_text(json.dumps(
        {"size": [32, 32], "mode": "RGB", "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
         "interpolation": "bilinear", "resize_mode": "squash", "fill_color": 0}))
    entry = catalog_entry("tiny-immich", "tester/ViT-tiny__immich", "immich",
                          {"image": "visual/model.onnx", "text": "textual/model.onnx",
                           "preprocess_config": "visual/preprocess_cfg.json"}, folders=["textual"])
    package = _get({"tester/ViT-tiny__immich": _onnx_bytes(root)}, monkeypatch, tmp_path, entry)
    manifest = json.loads((package / "manifest.json").read_text())
    assert manifest["io"]["image"]["batch"] == 1 and manifest["io"]["text"]["dtype"] == "int32"
    assert manifest["io"]["text"]["normalized"] and manifest["io"]["preprocess"]["resize"] == "squash"
    assert len([name for name in manifest["files"] if name.startswith("textual/")]) > 3  # the external data
    got = _embed("tiny-immich", tmp_path, HARD_STRINGS)
    # The oracle's preprocessing: the whole photo squashed to 32 x 32, bilinear, then (x/255 - 0.5) / 0.25.
    pixels = np.stack([(np.asarray(Image.open(p).convert("RGB").resize((32, 32), Image.Resampling.BILINEAR),
                                   np.float32) / 255 - 0.5) / 0.25 for p in PHOTOS]).transpose(0, 3, 1, 2)
    image, text = torch_features(rclip_model, np.ascontiguousarray(pixels, np.float32), HARD_STRINGS)
    assert cosine_rows(got["image"], image).min() >= 0.9999
    assert cosine_rows(got["text"], text).min() >= 0.9999


def _word_tokenizer(path: Path, words: list[str]) -> None:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, **{word: 4 + i for i, word in enumerate(words)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer.save(str(path))


def test_a_multilingual_text_tower_with_its_own_tokenizer_json(rclip_model, monkeypatch, tmp_path):
    """M-CLIP as Immich exports it: input_ids + attention_mask (int32, fixed [1, 77]) -> masked mean -> linear,
    tokenized by the repository's tokenizer.json (the tokenizers library, no torch)."""
    words = "ein hund eine katze un perro un gato 犬 猫 a dog cat".split()

    class MClip(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(5)
            self.embed = torch.nn.Embedding(4 + len(words), 24)
            self.project = torch.nn.Linear(24, RCLIP_CONFIG.embed_dim)

        def forward(self, input_ids, attention_mask):
            mask = attention_mask.unsqueeze(-1).float()
            pooled = (self.embed(input_ids.long()) * mask).sum(1) / mask.sum(1)
            return torch.nn.functional.normalize(self.project(pooled), dim=-1)

    text_model = MClip().eval()
    root = tmp_path / "mclip"
    (root / "visual").mkdir(parents=True)
    (root / "textual").mkdir()
    _export_tower(normalised_image_graph(rclip_model), torch.zeros(1, 3, 32, 32), root / "visual" / "model.onnx",
                  "image", "embedding", {})
    with torch.no_grad():
        torch.onnx.export(text_model, (torch.ones(1, 77, dtype=torch.int32), torch.ones(1, 77, dtype=torch.int32)),
                          str(root / "textual" / "model.onnx"), input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], opset_version=18, dynamo=False)
    import onnx

    graph = onnx.load(str(root / "textual" / "model.onnx"))
    graph.ir_version = min(graph.ir_version, 10)
    onnx.save(graph, str(root / "textual" / "model.onnx"))
    _word_tokenizer(root / "textual" / "tokenizer.json", words)
    (root / "textual" / "tokenizer_config.json").write_text(json.dumps({"pad_token": "<pad>"}))
    entry = catalog_entry("tiny-mclip", "tester/XLM-tiny", "immich",
                          {"image": "visual/model.onnx", "text": "textual/model.onnx",
                           "tokenizer": "textual/tokenizer.json", "tokenizer_config": "textual/tokenizer_config.json"})
    _get({"tester/XLM-tiny": _onnx_bytes(root)}, monkeypatch, tmp_path, entry)
    texts = ["Ein Hund", "un gato", "犬", "a dog cat unknownword", "", " ".join(words * 10)]
    got = _embed("tiny-mclip", tmp_path, texts)
    from tokenizers import Tokenizer

    oracle = Tokenizer.from_file(str(root / "textual" / "tokenizer.json"))
    oracle.enable_truncation(77)
    expected = []
    with torch.no_grad():
        for text in texts:
            ids = oracle.encode(text).ids
            expected.append(text_model(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.int32))[0].numpy())
    assert cosine_rows(got["text"], np.stack(expected)).min() >= 0.9999
    # The same words in two languages are two different texts to this random model: no accidental sharing.
    assert cosine_rows(got["text"][:1], got["text"][1:2])[0] < 0.99


def test_a_clipdesk_package_kept_in_a_hub_repository(tiny_model_package, monkeypatch, tmp_path):
    repo = {f"models/tiny/{name}": data for name, data in _onnx_bytes(tiny_model_package).items()}
    entry = catalog_entry("tiny-from-hub", "tester/clipdesk-packages", "clipdesk",
                          {"manifest": "models/tiny/manifest.json", "image": "models/tiny/image.onnx",
                           "text": "models/tiny/text.onnx"})
    package = _get({"tester/clipdesk-packages": repo}, monkeypatch, tmp_path, entry)
    for name in ("image.onnx", "text.onnx"):
        assert (package / name).read_bytes() == (tiny_model_package / name).read_bytes()
    manifest = json.loads((package / "manifest.json").read_text())
    assert manifest["name"] == "tiny-from-hub" and manifest["provenance"]["hub"]["layout"] == "clipdesk"
    assert run_cli("model", "verify", "tiny-from-hub") == 0


def test_a_graph_whose_weights_point_outside_the_package_is_refused(rclip_files, monkeypatch, tmp_path, capsys):
    """The package is untrusted: an external-data location that climbs out of it must not load."""
    import onnx

    graph = onnx.load_from_string(rclip_files[f"{RCLIP_DIR}/visual.onnx"])
    for initializer in graph.graph.initializer:
        if initializer.name.endswith("proj") or initializer.raw_data and len(initializer.raw_data) > 4096:
            initializer.data_location = onnx.TensorProto.EXTERNAL
            initializer.ClearField("raw_data")
            del initializer.external_data[:]
            entry = initializer.external_data.add()
            entry.key, entry.value = "location", "../../../../etc/passwd"
            break
    files = {**rclip_files, f"{RCLIP_DIR}/visual.onnx": graph.SerializeToString()}
    server = StandInHub({RCLIP_REPO: files})
    try:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        catalog = write_catalog(tmp_path, catalog_entry(
            "tiny-rclip", RCLIP_REPO, "rclip", {"image": f"{RCLIP_DIR}/visual.onnx", "text": f"{RCLIP_DIR}/textual.onnx"}))
        assert run_cli("model", "get", "tiny-rclip", "--catalog", catalog, "--yes") == 1
    finally:
        server.close()
    error = error_lines(capsys.readouterr().err)
    assert len(error) == 1 and "ONNX Runtime cannot load it" in error[0]
    assert not (paths.models_dir() / "tiny-rclip").exists()


@pytest.mark.parametrize("bad", [{"image": "../visual.onnx", "text": "t.onnx"}, {"image": "/etc/x.onnx", "text": "t"},
                                 {"image": "a\\..\\b.onnx", "text": "t"}, {"text": "t.onnx"}])
def test_catalog_paths_that_leave_the_package_or_miss_a_tower_are_refused(bad, tmp_path, capsys):
    catalog = write_catalog(tmp_path, catalog_entry("bad", "tester/bad", "rclip", bad))
    assert run_cli("model", "get", "bad", "--catalog", catalog, "--yes") == 1
    error = error_lines(capsys.readouterr().err)
    assert len(error) == 1 and ("unsafe file name" in error[0] or "needs at least image and text" in error[0])


def test_training_refuses_to_start_from_a_wrapped_package_with_a_clear_line(hub, rclip_catalog):
    from clipdesk.errors import ClipdeskError
    from clipdesk.model.package_weights import model_from_package
    from clipdesk.runtime.registry import resolve_model

    assert run_cli("model", "get", "tiny-rclip", "--catalog", rclip_catalog, "--yes") == 0
    with pytest.raises(ClipdeskError, match="wraps ONNX graphs made elsewhere"):
        model_from_package(resolve_model("tiny-rclip"))


def test_a_wrapped_package_keys_its_embeddings_by_its_image_graph(hub, rclip_catalog):
    """Vectors of a re-published model never mix with the old ones: the key holds the image graph's hash."""
    from clipdesk.library.store import embedding_model_key
    from clipdesk.runtime.registry import resolve_model

    assert run_cli("model", "get", "tiny-rclip", "--catalog", rclip_catalog, "--yes") == 0
    package = resolve_model("tiny-rclip")
    sha = package.manifest.files[f"{RCLIP_DIR}/visual.onnx"]["sha256"]
    import hashlib

    assert embedding_model_key(package) == \
        f"tiny-rclip@{hashlib.sha256(f'{RCLIP_DIR}/visual.onnx:{sha}'.encode()).hexdigest()[:12]}"


def test_downloads_go_through_the_proxy_the_environment_names(hub, rclip_catalog, monkeypatch):
    from hub_standin import ForwardProxy

    proxy = ForwardProxy()
    try:
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        assert run_cli("model", "get", "tiny-rclip", "--catalog", rclip_catalog, "--yes") == 0
    finally:
        proxy.close()
    assert any(line.startswith("HEAD ") and "/resolve/main/" in line for line in proxy.seen)
    assert any(line.startswith("GET ") and "/blobs/" in line for line in proxy.seen)  # the CDN too


def test_a_disk_that_fills_up_midway_keeps_what_was_fetched_and_says_so(hub, rclip_catalog, monkeypatch, capsys):
    import errno
    import io

    import clipdesk.hub.client as client_module

    class FillingFile(io.FileIO):
        def write(self, data):
            if self.tell() + len(data) > 600_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    monkeypatch.setattr(client_module, "open", lambda path, mode: FillingFile(path, "a" if "a" in mode else "r"),
                        raising=False)
    assert run_cli("model", "get", "tiny-rclip", "--catalog", rclip_catalog, "--yes") == 1
    error = error_lines(capsys.readouterr().err)
    assert len(error) == 1 and "the disk is full" in error[0] and "resume" in error[0]
    kept = next(paths.data_dir().rglob("textual.onnx.part")).stat().st_size
    assert not (paths.models_dir() / "tiny-rclip").exists()
    monkeypatch.delattr(client_module, "open")
    assert run_cli("model", "get", "tiny-rclip", "--catalog", rclip_catalog, "--yes") == 0  # space freed: resumes
    assert f"bytes={kept}-" in [entry["range"] for entry in hub.requests("cdn", "GET")]


def test_a_mirror_that_answers_large_files_directly_is_held_to_their_etag(hub, rclip_catalog, capsys):
    hub.redirect_lfs = False
    hub.tamper.add(f"{RCLIP_REPO}/{RCLIP_DIR}/visual.onnx")
    assert run_cli("model", "get", "tiny-rclip", "--catalog", rclip_catalog, "--yes") == 1
    error = error_lines(capsys.readouterr().err)
    assert len(error) == 1 and "where the hub announced" in error[0]
    hub.tamper.clear()
    assert run_cli("model", "get", "tiny-rclip", "--catalog", rclip_catalog, "--yes") == 0
    assert not hub.requests("cdn")


def test_a_got_package_can_be_imported_elsewhere_as_a_folder_or_a_zip(hub, rclip_catalog, tmp_path):
    import shutil

    assert run_cli("model", "get", "tiny-rclip", "--catalog", rclip_catalog, "--yes") == 0
    folder = paths.models_dir() / "tiny-rclip"
    assert run_cli("model", "import", folder, "--name", "copied") == 0
    archive = shutil.make_archive(str(tmp_path / "tiny-rclip"), "zip", folder.parent, folder.name)
    assert run_cli("model", "import", archive, "--name", "zipped") == 0
    for name in ("copied", "zipped"):
        assert (paths.models_dir() / name / RCLIP_DIR / "visual.onnx").read_bytes() == \
            (folder / RCLIP_DIR / "visual.onnx").read_bytes()
        assert run_cli("model", "verify", name) == 0
