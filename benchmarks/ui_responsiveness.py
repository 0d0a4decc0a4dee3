"""How the desktop app feels: start-to-window time, event-loop stalls while indexing, a 100,000-photo grid.

    python benchmarks/ui_responsiveness.py [--photos ../shared/data/photos/imagenet-sample] [--model NAME_OR_DIR]

Runs offscreen in a temporary CLIPDESK_HOME. Without --model it exports clipdesk's tiny random test
model (needs the train extra); pass an imported package (e.g. one made by `clipdesk model import
../shared/eval/reference/openai-vit-tiny.pt`) to measure with a real architecture. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = ROOT.parent / "shared" / "data" / "photos" / "imagenet-sample"

CHILD_START = r"""
import sys, time
from PySide6.QtCore import QTimer
from clipdesk.ui.app import create_app, create_main_window
app = create_app([])
window = create_main_window()
window.show()
def shown():
    print("SHOWN", time.time(), flush=True)
    app.quit()
QTimer.singleShot(0, shown)
app.exec()
"""


def start_to_window(home: str, runs: int) -> list[float]:
    """Seconds from launching a fresh interpreter to the main window shown and the event loop running."""
    env = dict(os.environ, CLIPDESK_HOME=home, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    times = []
    for _ in range(runs):
        started = time.time()
        output = subprocess.run([sys.executable, "-c", CHILD_START], env=env, capture_output=True, text=True,
                                check=True).stdout
        shown = float(next(line for line in output.splitlines() if line.startswith("SHOWN")).split()[1])
        times.append(shown - started)
    return times


def tiny_model(folder: Path) -> Path:
    from clipdesk.model import ClipConfig, create_model
    from clipdesk.model.onnx_export import export_package

    import torch

    config = ClipConfig(embed_dim=32, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=8,
                        vision_heads=1, context_length=16, vocab_size=49408, text_width=64, text_heads=1,
                        text_layers=1, activation="quick_gelu")
    torch.manual_seed(0)
    return export_package(create_model(config), folder / "tiny-random", name="tiny-random", log=lambda _: None).path


def indexing_stalls(photos: Path) -> dict:
    """Index `photos` in the window while a 5 ms timer measures the longest gap in the event loop."""
    from PySide6.QtCore import QEventLoop, QTimer

    from clipdesk.ui.app import create_app
    from clipdesk.ui.main_window import MainWindow

    app = create_app([])
    window = MainWindow()
    window.resize(1280, 800)
    window.show()

    def wait_until(predicate, timeout=600.0):
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            loop = QEventLoop()
            QTimer.singleShot(10, loop.quit)
            loop.exec()

    wait_until(lambda: window.service.has_model)
    gaps, last = [], [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    probe = QTimer()
    probe.setInterval(5)
    probe.timeout.connect(tick)
    probe.start()
    started = time.perf_counter()
    summaries = []
    window.service.indexFinished.connect(summaries.append)
    window.add_folders([str(photos)])
    wait_until(lambda: summaries)
    seconds = time.perf_counter() - started
    probe.stop()
    count = summaries[0].scanned
    window.close()
    app.processEvents()
    ordered = sorted(gaps)
    return {"photos": count, "seconds": round(seconds, 2), "ticks": len(gaps),
            "max_stall_ms": round(ordered[-1] * 1000, 1), "p99_gap_ms": round(ordered[int(len(gaps) * 0.99)] * 1000, 1)}


def big_grid(count: int) -> dict:
    import numpy as np
    from PySide6.QtWidgets import QApplication

    from clipdesk.library.store import Library
    from clipdesk.ui.library_service import ResultSet
    from clipdesk.ui.photo_grid import PhotoGridModel, PhotoGridView
    from clipdesk.ui.thumbnails import ThumbnailLoader

    app = QApplication.instance()
    with tempfile.TemporaryDirectory() as folder, Library(Path(folder) / "empty.db") as library:
        loader = ThumbnailLoader(library)
        model = PhotoGridModel(loader)
        view = PhotoGridView(model)
        view.resize(1200, 800)
        view.show()
        ids = np.arange(1, count + 1, dtype=np.int64)
        results = ResultSet("", ids, [f"/photos/{i:07d}.jpg" for i in ids], None)
        started = time.perf_counter()
        model.set_results(results)
        app.processEvents()
        filled = time.perf_counter() - started
        steps = []
        for fraction in (0.25, 0.5, 0.75, 1.0):
            started = time.perf_counter()
            view.verticalScrollBar().setValue(int(view.verticalScrollBar().maximum() * fraction))
            app.processEvents()
            steps.append(time.perf_counter() - started)
        started = time.perf_counter()
        view.selectAll()
        app.processEvents()
        selected = time.perf_counter() - started
        loader.stop()
        view.close()
    return {"photos": count, "fill_ms": round(filled * 1000, 1), "worst_jump_scroll_ms": round(max(steps) * 1000, 1),
            "select_all_ms": round(selected * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--model", help="registered model name or model package folder (default: tiny random)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--grid", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory() as home:
        os.environ["CLIPDESK_HOME"] = home
        starts = start_to_window(home, args.runs)
        print(json.dumps({"start_to_window_s": [round(t, 3) for t in starts], "empty library, no model": True}))
        model = Path(args.model) if args.model and Path(args.model).is_dir() else None
        if args.model and model is None:
            from clipdesk.runtime.registry import resolve_model

            model = resolve_model(args.model).path
        model = model or tiny_model(Path(home) / "exported")
        from clipdesk.runtime.package_import import import_package

        import_package(model)
        from clipdesk.ui.app import create_app

        create_app([])
        print(json.dumps({"grid": big_grid(args.grid)}))
        if args.photos.is_dir():
            print(json.dumps({"indexing": indexing_stalls(args.photos), "model": Path(model).name}))
        else:
            print(f"no photos at {args.photos}: indexing stalls not measured")


if __name__ == "__main__":
    main()
