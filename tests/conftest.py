import importlib.util
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = FIXTURES / "reference"
# The two reference checkpoints (13-15 MB each) stay in shared/, which CI always has beside the clone.
SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_REFERENCE = SHARED / "eval" / "reference"


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (CI set, as .ci/run and CI services do) a skipped test fails: CI provides every tool, extra
    and fixture the suite needs, so a skip there means a test silently stopped proving anything. Tests
    marked `gpu` (hardware CI has not) are left out of `make test` and run by `make test-gpu`, where they
    skip with their reason when no GPU is there."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and not hasattr(report, "wasxfail") and item.get_closest_marker("gpu") is None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where nothing may skip: {reason}"


@pytest.fixture(autouse=True)
def clipdesk_home(tmp_path, monkeypatch):
    """Every test gets its own empty CLIPDESK_HOME: nothing touches the user's real data."""
    home = tmp_path / "clipdesk-home"
    monkeypatch.setenv("CLIPDESK_HOME", str(home))
    return home


@pytest.fixture
def reference_inputs():
    return json.loads((REFERENCE / "inputs.json").read_text())


def reference_checkpoint(name: str) -> Path:
    """Path of a reference checkpoint ('openai-vit-tiny' or 'openai-rn-tiny'). Without ../shared the test
    skips (fails in CI); with ../shared but not the file, it fails: the fixture was lost."""
    path = SHARED_REFERENCE / f"{name}.pt"
    if not path.exists():
        if SHARED.is_dir():
            pytest.fail(f"reference checkpoint {path} is missing, though {SHARED} is there", pytrace=False)
        pytest.skip(f"reference checkpoint {path} is not available (no {SHARED} beside the clone)")
    return path


def reference_expected(name: str) -> dict:
    with np.load(REFERENCE / f"{name}.expected.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture
def no_bundled_models(tmp_path, monkeypatch):
    """Hide the models shipped in resources/ so a test sees only what it installs itself."""
    empty = tmp_path / "no-bundled-models"
    empty.mkdir()
    monkeypatch.setattr("clipdesk.paths.bundled_models_dir", lambda: empty)
    return empty


@pytest.fixture(scope="session")
def tiny_model_package(tmp_path_factory):
    """A random-weight ViT model package (32 px, embed 32), exported once per test session.

    Its embeddings carry no meaning; use it to test mechanics (pipelines, storage, CLI), not ranking.
    """
    import torch

    from clipdesk.model import ClipConfig, create_model
    from clipdesk.model.onnx_export import export_package

    config = ClipConfig(embed_dim=32, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=8,
                        vision_heads=1, context_length=16, vocab_size=49408, text_width=64, text_heads=1,
                        text_layers=1, activation="quick_gelu")
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "tiny-random"
    return export_package(create_model(config), folder, name="tiny-random", log=lambda _: None).path


@pytest.fixture
def model(tiny_model_package):
    """The tiny random model package's encoders on the CPU."""
    from clipdesk.runtime.encoders import ClipModel
    from clipdesk.runtime.package import load_package

    return ClipModel(load_package(tiny_model_package), device="cpu")


@pytest.fixture
def library():
    """A library in this test's CLIPDESK_HOME, closed afterwards."""
    from clipdesk.library.store import Library

    with Library() as library:
        yield library


@contextmanager
def benchmark_module(name: str):
    """A script of benchmarks/ imported as a module, for the duration of the block."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]
