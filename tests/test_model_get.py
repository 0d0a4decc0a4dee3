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


@pytest.fixture(scope="module")
def rclip_model():
    return random_model(RCLIP_CONFIG, seed=3)


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
        assert {"image", "text"} <= set(entry["files"]) and entry["licence"] and entry["download_mb"] > 0
        assert "source" in entry["imagenet_zero_shot"]


