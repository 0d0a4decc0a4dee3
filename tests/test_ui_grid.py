"""The photo grid's View menu: justified rows of whole photos beside square cells, scores on every tile,
and thumbnails at twice the cell on a screen of device pixel ratio 2 (a process of its own with
QT_SCALE_FACTOR=2 on the offscreen platform).

The photos' shapes come from the files the tests write (Pillow's sizes), the expected cells from those
shapes, the menu is opened and its items chosen with the keys a user presses."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QImage, QWheelEvent
from PySide6.QtWidgets import QApplication, QStyleOptionViewItem
from test_ui_layout import TextRecorder
from test_ui_support import (app, bundled_dir, installed_model, open_indexed, open_window, press,  # noqa: F401
                             wait_focus_in)

from clipdesk import paths
from clipdesk.library.records import OK, PhotoMetadata
from clipdesk.library.store import Library
from clipdesk.ui.justified import justified_layout
from clipdesk.ui.photo_grid import GAP, THUMBNAIL_ROLE

# Landscape 3:1, portrait 1:3, square, and between: every cell must keep its photo's shape.
SIZES = [(300, 100), (100, 300), (200, 200), (300, 200), (150, 100), (100, 150), (240, 100), (200, 200),
         (100, 300), (300, 100), (180, 120), (120, 180)]


def write_photos(folder: Path, sizes) -> dict[str, tuple[int, int]]:
    """Small JPEGs of the given sizes, each its own colours; returns name -> (width, height)."""
    folder.mkdir(parents=True, exist_ok=True)
    shapes = {}
    for number, size in enumerate(sizes):
        blocks = np.random.default_rng(number).integers(0, 256, (4, 4, 3), dtype=np.uint8)
        name = f"shape{number:02d}.jpg"
        Image.fromarray(blocks).resize(size, Image.Resampling.NEAREST).save(folder / name, "JPEG", quality=90)
        shapes[name] = size
    return shapes


@pytest.fixture
def shaped_window(tmp_path, installed_model, open_window, qtbot):
    shapes = write_photos(tmp_path / "photos", SIZES)
    return open_indexed(open_window, qtbot, tmp_path / "photos", len(SIZES)), shapes


def choose_view_item(qtbot, window, mnemonic) -> None:
    """View menu → an item, with the keys: Alt+V opens the menu, the item's underlined letter chooses it."""
    window.activateWindow()
    window.grid.setFocus()
    wait_focus_in(qtbot, window)
    press(qtbot, Qt.Key.Key_V, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is not None)
    press(qtbot, mnemonic)
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is None)
    # A window manager gives the focus back to the window under a closed menu; the offscreen platform does not.
    window.activateWindow()
    wait_focus_in(qtbot, window)


def cells(window) -> list[tuple[str, object]]:
    grid, model = window.grid, window.grid_model
    return [(model.results.names[row], grid.visualRect(model.index(row))) for row in range(model.rowCount())]


def justified_rows(window, shapes, laid) -> dict[int, list]:
    """Checks the cells as justified rows and returns them by row top: each cell of its photo's shape, the
    rows GAP apart, each but the last filled to the width at most the target height, the last one at the
    target height and not stretched."""
    for name, rect in laid:
        width, height = shapes[name]
        # The cell has the photo's shape, to the pixel its rounding allows.
        assert abs(rect.width() - rect.height() * width / height) <= 1.5, (name, rect)
    rows: dict[int, list] = {}
    for name, rect in laid:
        rows.setdefault(rect.top(), []).append(rect)
    tops = sorted(rows)
    edge = window.grid.viewport().width() - GAP // 2  # the cells' right edge, GAP / 2 inside the viewport
    target = window.zoom.value() - GAP
    for top in tops:
        row = sorted(rows[top], key=lambda r: r.left())
        assert row[0].left() == GAP // 2
        assert all(r.height() == row[0].height() for r in row)
        assert all(b.left() - (a.left() + a.width()) == GAP for a, b in zip(row, row[1:]))
        if row[-1].left() + row[-1].width() == edge:  # filled to the width
            assert row[0].height() <= target
        else:  # only the last row may end short: at the target height, not stretched
            assert top == tops[-1]
            assert row[0].height() == target
            assert row[-1].left() + row[-1].width() < edge
    for upper, lower in zip(tops, tops[1:]):
        assert lower - (upper + rows[upper][0].height()) == GAP
    return rows


def test_justified_rows_keep_each_photos_shape_and_fill_the_width(shaped_window, qtbot):
    window, shapes = shaped_window
    grid = window.grid
    choose_view_item(qtbot, window, Qt.Key.Key_J)
    assert json.loads(paths.settings_path().read_text())["justified_grid"] is True
    QApplication.processEvents()

    laid = cells(window)
    assert len(justified_rows(window, shapes, laid)) >= 3

    # A thumbnail arrives uncropped, at the row's target height in device pixels.
    model = window.grid_model
    wide = next(row for row, (name, _) in enumerate(laid) if shapes[name] == (300, 100))
    qtbot.waitUntil(lambda: model.index(wide).data(THUMBNAIL_ROLE) is not None, timeout=30000)
    pixmap = model.index(wide).data(THUMBNAIL_ROLE)
    assert pixmap.height() == round((window.zoom.value() - GAP) * grid.devicePixelRatioF())
    assert abs(pixmap.width() - 3 * pixmap.height()) <= 1


def test_justified_grid_keys_mouse_and_zoom(shaped_window, qtbot):
    window, shapes = shaped_window
    grid = window.grid
    choose_view_item(qtbot, window, Qt.Key.Key_J)
    QApplication.processEvents()
    laid = cells(window)

    def below(row: int) -> int:
        """The photo in the next row whose cell is horizontally nearest to this one's middle."""
        rect = laid[row][1]
        lower = [r for r, (_, other) in enumerate(laid) if other.top() > rect.bottom()]
        top = min(laid[r][1].top() for r in lower)
        candidates = [r for r in lower if laid[r][1].top() == top]
        middle = rect.center().x()
        return min(candidates, key=lambda r: max(laid[r][1].left() - middle, 0, middle - laid[r][1].right()))

    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=laid[0][1].center())
    assert grid.currentIndex().row() == 0
    press(qtbot, Qt.Key.Key_Right)
    assert grid.currentIndex().row() == 1
    press(qtbot, Qt.Key.Key_Down)
    assert grid.currentIndex().row() == below(1) and below(1) > 1
    press(qtbot, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert grid.selected_rows() == sorted({below(1), below(1) + 1})
    press(qtbot, Qt.Key.Key_End)
    assert grid.currentIndex().row() == len(laid) - 1
    press(qtbot, Qt.Key.Key_Home)
    assert grid.currentIndex().row() == 0
    press(qtbot, Qt.Key.Key_PageDown)
    assert grid.currentIndex().row() > 0 and laid[grid.currentIndex().row()][1].top() > laid[0][1].top()

    # A rubber band from the empty space below the last row selects the cells it meets.
    last = laid[-1][1]
    start = QPoint(grid.viewport().width() - 4, last.bottom() + 2 * GAP)
    end = QPoint(laid[-2][1].center().x(), laid[-2][1].center().y())
    assert not grid.indexAt(start).isValid()
    qtbot.mousePress(grid.viewport(), Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(grid.viewport(), pos=(start + end) / 2)
    qtbot.mouseMove(grid.viewport(), pos=end)
    qtbot.mouseRelease(grid.viewport(), Qt.MouseButton.LeftButton, pos=end)
    band = QRect(start, end).normalized()
    band = [row for row, (_, rect) in enumerate(laid) if rect.intersects(band)]
    assert grid.selected_rows() == band and len(band) >= 2

    # Double-click opens the photo.
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=laid[2][1].center())  # QTest's double-click
    qtbot.mouseDClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=laid[2][1].center())  # is its second half
    qtbot.waitUntil(lambda: window.photo_view.isVisible())
    assert window.photo_view.title.text() == laid[2][0]
    window.photo_view.close()
    qtbot.waitUntil(lambda: not window.photo_view.isVisible())

    # Ctrl+wheel zooms: the rows get taller by the zoom step.
    zoom = window.zoom.value()
    center = QPointF(grid.viewport().rect().center())
    wheel = QWheelEvent(center, QPointF(grid.viewport().mapToGlobal(center.toPoint())), QPoint(0, 0),
                        QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(grid.viewport(), wheel)
    QApplication.processEvents()
    assert window.zoom.value() == zoom + 16
    justified_rows(window, shapes, cells(window))
    assert window.grid_model.side == round((zoom + 16 - GAP) * grid.devicePixelRatioF())

    # Back to squares, through the menu again; the choice is remembered.
    choose_view_item(qtbot, window, Qt.Key.Key_J)
    QApplication.processEvents()
    assert all(rect.width() == rect.height() for _, rect in cells(window))
    assert json.loads(paths.settings_path().read_text())["justified_grid"] is False


def tile_texts(grid, row: int) -> list[str]:
    """The texts the grid's delegate paints on a tile, at its place and in its state in the view."""
    image = QImage(grid.viewport().size(), QImage.Format.Format_ARGB32)
    painter = TextRecorder(image)
    option = QStyleOptionViewItem()
    grid.initViewItemOption(option)
    index = grid.model().index(row)
    option.rect = grid.visualRect(index)
    grid.itemDelegate().paint(painter, option, index)
    painter.end()
    return painter.texts


def corners(qtbot, grid, rows) -> list[bytes]:
    """The bottom right of each tile as the view paints it (where a score is written), as raw pixels, once
    the tiles' thumbnails are in."""
    qtbot.waitUntil(lambda: all(grid.model().index(row).data(THUMBNAIL_ROLE) is not None for row in rows),
                    timeout=30000)
    image = grid.viewport().grab().toImage()
    ratio = image.devicePixelRatio()
    parts = []
    for row in rows:
        rect = grid.visualRect(grid.model().index(row))
        corner = QRect(rect.right() - 60, rect.bottom() - 30, 55, 25)
        part = image.copy(QRect(*(round(v * ratio) for v in (corner.x(), corner.y(), corner.width(),
                                                                corner.height()))))
        parts.append(bytes(part.convertToFormat(QImage.Format.Format_RGB32).constBits()))
    return parts


@pytest.mark.parametrize("justified", [False, True])
def test_show_scores_on_tiles_writes_each_search_score_on_its_tile(shaped_window, qtbot, justified):
    window, _ = shaped_window
    grid, model = window.grid, window.grid_model
    window.activateWindow()
    grid.setFocus()  # as after a menu: the focus back on the grid
    wait_focus_in(qtbot, window)
    if justified:
        choose_view_item(qtbot, window, Qt.Key.Key_J)
    rows = range(4)
    QApplication.processEvents()
    listing = corners(qtbot, grid, rows)
    choose_view_item(qtbot, window, Qt.Key.Key_S)  # on: a listing has no scores, nothing changes
    assert json.loads(paths.settings_path().read_text())["scores_on_tiles"] is True
    QApplication.processEvents()
    assert corners(qtbot, grid, rows) == listing and all(tile_texts(grid, row) == [] for row in rows)

    press(qtbot, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(QApplication.focusWidget(), "a red photo")
    qtbot.waitUntil(lambda: window.results.query == "a red photo" and window.results.scores is not None)
    for row in rows:  # the scores of the results, as the searcher gave them
        assert tile_texts(grid, row) == [f"{float(window.results.scores[row]):.3f}"]
    QApplication.processEvents()
    shown = corners(qtbot, grid, rows)
    choose_view_item(qtbot, window, Qt.Key.Key_S)  # off: scores only under the pointer, as before
    QApplication.processEvents()
    assert all(tile_texts(grid, row) == [] for row in rows)
    hidden = corners(qtbot, grid, rows)
    assert all(a != b for a, b in zip(shown, hidden))
    assert model.rowCount() == len(SIZES)


def test_an_empty_or_one_photo_justified_layout_answers_without_failing():
    empty = justified_layout(np.zeros(0), 800, 170, GAP, GAP // 2)
    assert (empty.lines, empty.content_height, empty.photos_in(0, 0, 800, 800)) == (0, 0, [])
    assert empty.photo_at(10, 10) is None
    one = justified_layout(np.ones(1), 800, 170, GAP, GAP // 2)
    assert one.rect(0) == (GAP // 2, GAP // 2, 170, 170)  # a last row: not stretched
    assert one.photo_at(GAP // 2 + 169, GAP // 2 + 169) == 0 and one.photo_at(GAP // 2 + 170, 50) is None
    assert one.photos_in(0, 0, 800, 800) == [(0, 0)] and one.content_height == 170 + 2 * (GAP // 2)


# Run in a process of its own: the device pixel ratio is fixed when the QApplication starts.
HIDPI_CHILD = r"""
import json, sys, time
from PySide6.QtCore import QRect
from PySide6.QtWidgets import QApplication
app = QApplication([])
from clipdesk.library.store import Library
from clipdesk.ui.library_service import ResultSet, photo_aspects
from clipdesk.ui.photo_grid import GAP, THUMBNAIL_ROLE, PhotoGridModel, PhotoGridView
from clipdesk.ui.thumbnails import ThumbnailLoader

out = sys.argv[1]
library = Library()
ids, paths = library.photo_listing()
loader = ThumbnailLoader(library)
model = PhotoGridModel(loader)
view = PhotoGridView(model)
view.resize(900, 700)
view.show()
model.set_results(ResultSet("", ids, paths, None, aspects=photo_aspects(library, ids)))
report = {"ratio": view.devicePixelRatioF()}
for layout in ("square", "justified"):
    view.set_justified(layout == "justified")
    index = model.index(0)
    deadline = time.monotonic() + 60
    while index.data(THUMBNAIL_ROLE) is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()
    pixmap = index.data(THUMBNAIL_ROLE)
    rect = view.visualRect(index)
    inset = view.delegate.inset
    photo = rect.adjusted(inset, inset, -inset, -inset)
    grab = view.viewport().grab(photo).toImage()
    grab.save(f"{out}/{layout}.png")
    report[layout] = {"requested": model.side, "square": model.square, "pixmap": [pixmap.width(), pixmap.height()],
                      "cell": [photo.width(), photo.height()], "painted": [grab.width(), grab.height()]}
loader.stop()
library.close()
print(json.dumps(report))
"""


def test_thumbnails_are_requested_and_painted_at_twice_the_cell_at_device_pixel_ratio_2(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    detail = np.random.default_rng(7).integers(0, 256, (300, 400, 3), dtype=np.uint8)  # 3 px blocks at 1200 x 900
    original = Image.fromarray(detail).resize((1200, 900), Image.Resampling.NEAREST)
    path = folder / "detail.png"
    original.save(path)
    with Library() as library:
        folder_id = library.add_folder(folder).id
        with library.transaction():
            library.save_photo(folder_id, os.fsencode(path), path.stat().st_size, path.stat().st_mtime_ns,
                               hashlib.sha256(path.read_bytes()).hexdigest(), PhotoMetadata(width=1200, height=900),
                               OK)
    environment = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_SCALE_FACTOR="2",
                       PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                   os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", HIDPI_CHILD, str(tmp_path)], env=environment, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["ratio"] == 2.0
    for layout in ("square", "justified"):
        shown = report[layout]
        width, height = (2 * side for side in shown["cell"])  # the cell's photo in device pixels
        # Asked for and made at twice the cell: a square of its side, or uncropped at its height.
        assert shown["requested"] == height and shown["square"] == (layout == "square")
        assert shown["pixmap"][1] == height and abs(shown["pixmap"][0] - width) <= 1
        assert shown["painted"] == [width, height]
        painted = np.asarray(Image.open(tmp_path / f"{layout}.png").convert("RGB"), np.float32)
        # The oracle: Pillow's crop of the original to the cell's shape at that size. From the 256 px cached
        # thumbnail, enlarged (or from one made for a ratio of 1, then enlarged), the 3 px blocks blur to grey.
        expected = np.asarray(ImageOps.fit(original, (width, height), Image.Resampling.LANCZOS), np.float32)
        assert np.abs(painted - expected).mean() < 20, layout
