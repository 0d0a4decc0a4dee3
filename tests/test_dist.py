"""The app bundle: packaging/build_dist.py builds it, and the frozen `clipdesk` works with no Python.

Slow (about 1-3 minutes: a runtime-only environment under build/dist-venv the first time, then a full
PyInstaller run into a temporary folder). `make test-dist` runs it (pytest -m slow); `make test` leaves
it out (-m "not slow"), and without a mark expression that selects slow tests it skips itself.

One test on purpose: under pytest-xdist, tests of one module may land on different workers, and two
builds at once would share build/dist-venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = ROOT / "packaging" / "build_dist.py"
DIST_VENV = ROOT / "build" / "dist-venv"
MAX_BUNDLE_BYTES = 350 * 1000 * 1000
TRAIN_SIDE_MODULES = ("torch", "onnx", "onnxscript", "onnx_ir", "sympy", "safetensors", "transformers",
                      "clipdesk.model", "clipdesk.data", "clipdesk.train.trainer")


def bare_environment(home: Path, **extra: str) -> dict:
    """A person's shell without Python: no PYTHONPATH, VIRTUAL_ENV or venv on PATH, a throwaway clipdesk home."""
    environment = {"PATH": "/usr/bin:/bin" if os.name != "nt" else os.environ.get("SYSTEMROOT", "C:\\Windows"),
                   "HOME": str(home), "LANG": "C.UTF-8", "CLIPDESK_HOME": str(home / "clipdesk"),
                   "QT_QPA_PLATFORM": "offscreen"}
    for name in ("SYSTEMROOT", "TEMP", "TMP"):  # Windows cannot start processes without them
        if name in os.environ:
            environment[name] = os.environ[name]
    return {**environment, **extra}


def run_app(executable: Path, arguments: list[str], environment: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(executable), *arguments], env=environment, cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def bundled_module_names(executable: Path) -> set[str]:
    """Every Python module inside the frozen executable's archives (PyInstaller's archive viewer)."""
    viewer = DIST_VENV / ("Scripts/pyi-archive_viewer.exe" if os.name == "nt" else "bin/pyi-archive_viewer")
    listing = subprocess.run([str(viewer), "--list", "--recursive", "--brief", str(executable)], check=True,
                             capture_output=True, text=True, timeout=120).stdout
    return {line.strip().strip("',") for line in listing.splitlines() if line.strip()}


def test_built_app_indexes_and_searches_without_python(tmp_path, request):
    if "slow" not in (request.config.getoption("markexpr") or "").replace("not slow", ""):
        pytest.skip("builds the app bundle (minutes): run with `make test-dist` (pytest -m slow)")
    tiny_model_package = request.getfixturevalue("tiny_model_package")  # only now: it needs torch and time

    # 1. Build: the same script as `make dist`, into a temporary folder.
    dist, work = tmp_path / "dist", tmp_path / "pyinstaller"
    started = time.perf_counter()
    build = subprocess.run([sys.executable, str(BUILD_SCRIPT), "--dist", str(dist), "--work", str(work),
                            "--no-archive"], capture_output=True, text=True, timeout=1800)
    build_seconds = time.perf_counter() - started
    assert build.returncode == 0, f"build failed:\n{build.stdout[-6000:]}\n{build.stderr[-6000:]}"
    bundle = dist / "clipdesk"
    executable = bundle / ("clipdesk.exe" if os.name == "nt" else "clipdesk")
    assert executable.is_file()

    # 2. What is inside: the resources, no train side, within the size budget.
    resources = bundle / "_internal" / "resources"
    assert (resources / "vocab" / "bpe_simple_vocab_16e6.txt.gz").is_file()
    assert (resources / "onnx" / "device-probe.onnx").is_file()
    assert (resources / "sample-library").is_dir()
    files = [path for path in bundle.rglob("*") if path.is_file() and not path.is_symlink()]
    size = sum(path.stat().st_size for path in files)
    assert size <= MAX_BUNDLE_BYTES, f"bundle is {size / 1e6:.1f} MB"
    assert not [path for path in files if "torch" in path.name.lower() or "torch" in path.parts
                or "onnxruntime_providers_cuda" in path.name]
    modules = bundled_module_names(executable)
    assert "clipdesk.cli" in modules and "clipdesk.runtime.encoders" in modules
    leaked = sorted(name for name in modules if any(name == prefix or name.startswith(prefix + ".")
                                                     for prefix in TRAIN_SIDE_MODULES))
    assert not leaked, f"train-side modules in the bundle: {leaked}"

    # 3. A photo library indexed and searched by the frozen app, run by path with no Python environment.
    photos = tmp_path / "photos"
    photos.mkdir()
    samples = sorted((ROOT / "resources" / "sample-library").glob("*.png"))[:12]
    for sample in samples:
        shutil.copy2(sample, photos / sample.name.replace(" ", "_"))
    # A phone's HEIC and an AVIF, which the bundle decodes with pi-heif and Pillow.
    import pillow_heif
    from PIL import Image

    with Image.open(samples[0]) as sample:
        pillow_heif.from_pillow(sample.convert("RGB")).save(photos / "phone.heic", quality=85)
        sample.convert("RGB").save(photos / "web.avif", "AVIF")
    # A video: the bundle leaves PyAV out (its FFmpeg links GPL encoders) and runs the computer's ffmpeg
    # program (here imageio-ffmpeg's build, named by CLIPDESK_FFMPEG; /usr/bin has none).
    import imageio_ffmpeg
    from video_files import SLIDES, slideshow

    (photos / "clip.mp4").write_bytes(slideshow(SLIDES[:3]))
    assert not [name for name in modules if name == "av" or name.startswith("av.")]
    environment = bare_environment(tmp_path / "home", CLIPDESK_FFMPEG=imageio_ffmpeg.get_ffmpeg_exe())
    model = str(tiny_model_package)
    indexed = run_app(executable, ["index", str(photos), "--model", model], environment, tmp_path)
    assert indexed.returncode == 0, indexed.stderr
    assert re.search(rf"\b{len(samples) + 3} indexed\b", indexed.stderr + indexed.stdout), indexed.stderr
    videos = run_app(executable, ["search", "--json", "--model", model, "banana is:video"], environment, tmp_path)
    assert videos.returncode == 0, videos.stderr
    [video] = json.loads(videos.stdout)
    assert video["path"] == str(photos / "clip.mp4") and video["duration"] == pytest.approx(6, abs=0.25)
    assert 0 <= video["time"] < 6
    notices = bundle / "THIRD-PARTY-NOTICES"
    assert "pi-heif" in (notices / "README.txt").read_text()
    assert "libde265" in (notices / "pi-heif" / "LICENSES_bundled.txt").read_text()

    found = run_app(executable, ["search", "--json", "-k", "3", "--model", model, "a red car"], environment, tmp_path)
    assert found.returncode == 0, found.stderr
    results = json.loads(found.stdout)
    assert len(results) == 3 and all(Path(result["path"]).parent == photos for result in results)

    example = photos / samples[0].name.replace(" ", "_")
    similar = run_app(executable, ["search", "--json", "-k", "1", "--model", model, "--like", str(example)],
                      environment, tmp_path)
    assert similar.returncode == 0, similar.stderr
    assert Path(json.loads(similar.stdout)[0]["path"]) == example

    # 4. Models: the bundled ones (resources/models/ at build time) are found inside the bundle; a PyTorch
    # checkpoint and a ready package (.zip) import.
    listed = run_app(executable, ["model", "list", "--json"], environment, tmp_path)
    assert listed.returncode == 0, listed.stderr
    bundled = [row for row in json.loads(listed.stdout) if row["bundled"]]
    shipped = sorted(manifest.parent.name for manifest in (ROOT / "resources" / "models").glob("*/manifest.json")
                     if not manifest.parent.name.startswith("."))
    assert sorted(row["name"] for row in bundled) == shipped
    assert all(Path(row["path"]).resolve().is_relative_to(bundle.resolve()) for row in bundled)
    # A PyTorch checkpoint (fp16 state dict, as OpenAI releases them) imports with no torch in the bundle, and
    # embeds like the PyTorch model it holds; a damaged one is refused in one line.
    import torch
    from test_checkpoints import randomized, vit_config

    from clipdesk.model import create_model

    torch_model = randomized(create_model(vit_config()))
    checkpoint = tmp_path / "vit-tiny.pt"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in torch_model.state_dict().items()}, checkpoint)
    converted = run_app(executable, ["model", "import", str(checkpoint), "--name", "frozen-import"], environment,
                        tmp_path)
    assert converted.returncode == 0, converted.stderr
    features = tmp_path / "frozen-import.npz"
    embedded = run_app(executable, ["embed", "--model", "frozen-import", "--text", "a red car", "--out",
                                    str(features)], environment, tmp_path)
    assert embedded.returncode == 0, embedded.stderr
    from clipdesk.runtime.tokenizer import get_tokenizer

    half = torch_model.half().float()  # the weights the checkpoint holds
    with torch.no_grad():
        expected = half.encode_text(torch.from_numpy(get_tokenizer()(["a red car"], context_length=77))).numpy()
    with np.load(features) as got:
        assert float((got["text"] * expected).sum() / np.linalg.norm(expected)) >= 0.9999
    damaged = tmp_path / "model.pt"
    damaged.write_bytes(b"PK\x03\x04 not really a checkpoint")
    refused = run_app(executable, ["model", "import", str(damaged)], environment, tmp_path)
    assert refused.returncode == 1 and "truncated or damaged" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    package_zip = tmp_path / "tiny.zip"
    with zipfile.ZipFile(package_zip, "w") as zipped:
        for path in Path(tiny_model_package).iterdir():
            zipped.write(path, f"{Path(tiny_model_package).name}/{path.name}")
    imported = run_app(executable, ["model", "import", str(package_zip), "--name", "tiny-zip", "--default"],
                       environment, tmp_path)
    assert imported.returncode == 0, imported.stderr
    listed = run_app(executable, ["model", "list", "--json"], environment, tmp_path)
    assert [row["name"] for row in json.loads(listed.stdout) if row["default"]] == ["tiny-zip"]

    # 5. A photo model from the model hub (a local stand-in), in rclip's layout, by the frozen app.
    from hub_standin import StandInHub
    from test_model_get import RCLIP_DIR, RCLIP_REPO, catalog_entry, export_rclip, rclip_test_model, write_catalog

    hub = StandInHub({RCLIP_REPO: export_rclip(rclip_test_model(), tmp_path / "rclip")})
    try:
        catalog = write_catalog(tmp_path, catalog_entry(
            "tiny-rclip", RCLIP_REPO, "rclip", {"image": f"{RCLIP_DIR}/visual.onnx", "text": f"{RCLIP_DIR}/textual.onnx"},
            licence_files=["LICENSE"]))
        got = run_app(executable, ["model", "get", "tiny-rclip", "--catalog", str(catalog), "--yes"],
                      {**environment, "HF_ENDPOINT": hub.endpoint}, tmp_path)
    finally:
        hub.close()
    assert got.returncode == 0, got.stderr
    assert "installed tiny-rclip" in got.stdout and "MIT License" in got.stderr
    embedded = run_app(executable, ["embed", "--model", "tiny-rclip", "--image", str(example), "--text", "a cat",
                                    "--out", str(tmp_path / "hub.npz")], environment, tmp_path)
    assert embedded.returncode == 0, embedded.stderr

    # 6. The desktop window opens (offscreen) and the app quits cleanly; the time is printed, not judged.
    window_seconds = None
    if (ROOT / "clipdesk" / "ui" / "app.py").exists():
        gui_environment = bare_environment(tmp_path / "gui-home", CLIPDESK_EXIT_AFTER_SHOW="1")
        started = time.time()
        gui = run_app(executable, [], gui_environment, tmp_path)
        shown = re.search(r"window shown at ([0-9.]+)", gui.stderr)
        assert gui.returncode == 0 and shown, gui.stderr
        window_seconds = float(shown.group(1)) - started
    print(f"\nbuild {build_seconds:.0f} s, bundle {size / 1e6:.1f} MB"
          + (f", start to window {window_seconds:.2f} s" if window_seconds is not None else ""))
