"""Fixtures and helpers shared by the UI tests (the test_ui_*.py modules import them from here).

Every test gets its own CLIPDESK_HOME (conftest), so settings, database and thumbnail cache start
empty. The model is the session's tiny random package, offered as if it were bundled with the app:
nothing is copied per test.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

MODEL_NAME = "tiny-random"


def make_photos(folder: Path, count: int, size=(96, 72), start: int = 0, prefix: str = "photo") -> list[Path]:
    """Distinct small JPEGs: random coloured blocks, so every file has its own bytes and thumbnail."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(start, start + count):
        rng = np.random.default_rng(seed)
        blocks = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        image = Image.fromarray(blocks).resize(size, Image.Resampling.NEAREST)
        path = folder / f"{prefix}{seed:04d}.jpg"
        image.save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


@pytest.fixture
def bundled_dir(tmp_path, monkeypatch):
    """An empty 'bundled models' folder: the app sees no model until a test puts one there."""
    folder = tmp_path / "bundled-models"
    folder.mkdir()
    monkeypatch.setattr("clipdesk.paths.bundled_models_dir", lambda: folder)
    return folder


@pytest.fixture
def installed_model(bundled_dir, tiny_model_package):
    """The tiny random model, installed (as if bundled) and therefore the default."""
    (bundled_dir / MODEL_NAME).symlink_to(tiny_model_package, target_is_directory=True)
    return MODEL_NAME


@pytest.fixture
def app(qapp):
    from clipdesk.ui.app import create_app

    return create_app([])


@pytest.fixture
def open_window(app, qtbot):
    """Makes main windows; at the end each is closed the way a user closes it (indexing stopped first)."""
    from clipdesk.ui.main_window import MainWindow

    windows = []

    def factory():
        window = MainWindow()
        window.resize(1100, 700)
        window.show()
        windows.append(window)
        return window

    yield factory
    for window in windows:
        if window.isVisible():
            window.close()
            qtbot.waitUntil(lambda w=window: not w.isVisible(), timeout=60000)


def wait_model(qtbot, window, name: str | None = MODEL_NAME, timeout: int = 20000) -> None:
    qtbot.waitUntil(lambda: window.service.model_state.name == name and
                    (name is None or window.service.has_model), timeout=timeout)


def wait_indexed(qtbot, window, photos: int, timeout: int = 60000) -> None:
    """Until indexing is over and the sidebar counts `photos` photos in the library."""
    qtbot.waitUntil(lambda: not window.service.indexing and window.sidebar_data is not None
                    and window.sidebar_data.total == photos, timeout=timeout)


def wait_results(qtbot, window, query: str, count: int | None = None, timeout: int = 20000):
    """Until the grid shows the results of `query` (and `count` photos, when given: a listing that was
    already shown before indexing finished has the same query)."""
    qtbot.waitUntil(lambda: window.results.query == query and not window.service.indexing
                    and (count is None or len(window.results) == count), timeout=timeout)
    return window.results


def open_indexed(open_window, qtbot, folder, count: int):
    """A window with the model loaded that has indexed `folder` (`count` photos) and lists them all."""
    window = open_window()
    wait_model(qtbot, window)
    window.add_folders([str(folder)])
    wait_indexed(qtbot, window, count)
    wait_results(qtbot, window, "", count)
    return window


def wait_focus_in(qtbot, window) -> None:
    """Until a widget of `window` has the keyboard focus (its window is the active one)."""
    qtbot.waitUntil(lambda: QApplication.focusWidget() is not None and QApplication.focusWidget().window() is window)


def press(qtbot, key, modifier=Qt.KeyboardModifier.NoModifier):
    """A key as the user presses it: to the widget with the keyboard focus, which Qt chose, not the test (or
    to an open popup, such as a completer's list, which takes the keys while it is shown). Returns that widget."""
    popup = QApplication.activePopupWidget()
    widget = popup or QApplication.focusWidget()
    assert widget is not None, "no widget has the keyboard focus"
    qtbot.keyClick(widget, key, modifier)
    if popup is not None and not popup.isVisible() and popup.focusProxy() is not None:
        # A window manager gives the focus back to the window under a closed popup; the offscreen
        # platform leaves no window active.
        below = popup.focusProxy().window()
        below.activateWindow()
        wait_focus_in(qtbot, below)
    return widget


def drop_urls(widget, paths, position: QPoint | None = None) -> tuple[bool, bool]:
    """Simulate a drag of file URLs onto `widget` (a view's viewport): enter, move, drop.

    Returns (whether the move was accepted, whether the drop was accepted)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    return drop_mime(widget, mime, position)


def drop_mime(widget, mime: QMimeData, position: QPoint | None = None) -> tuple[bool, bool]:
    point = QPointF(position if position is not None else widget.rect().center())
    actions = Qt.DropAction.CopyAction | Qt.DropAction.MoveAction | Qt.DropAction.LinkAction
    buttons, modifiers = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    try:  # PySide6 6.12 takes a QPointF (and deprecates QPoint); earlier versions take only a QPoint
        enter = QDragEnterEvent(point, actions, mime, buttons, modifiers)
    except TypeError:
        point = point.toPoint()
        enter = QDragEnterEvent(point, actions, mime, buttons, modifiers)
    QApplication.sendEvent(widget, enter)
    move = QDragMoveEvent(point, actions, mime, buttons, modifiers)
    QApplication.sendEvent(widget, move)
    moved = move.isAccepted()
    drop = QDropEvent(QPointF(point), actions, mime, buttons, modifiers)
    QApplication.sendEvent(widget, drop)
    return moved, drop.isAccepted()
