"""The window on a laptop: usable at 800 x 600 with the tagging panel open, sidebar names never elided to
nothing, collapsible sidebar sections, keywords apart from tags, clickable search hints and the query help,
a photo view title that is never cut off, and sharp thumbnails at high zoom.

Widths and text come from Qt itself (fontMetrics, sizeHint, geometry), the painted text from the sidebar's
delegate drawing into a recording painter."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QApplication, QStyleOptionViewItem
from test_ui_support import (app, bundled_dir, drop_mime, installed_model, make_photos,  # noqa: F401
                             open_window, press, wait_focus_in, wait_indexed, wait_model, wait_results)

from clipdesk.ui.sidebar import HEADER, KIND_ROLE, NEW_TAG, TAG
from clipdesk.ui.tagging_panel import NEW_SET, PHOTO_ID_ROLE

PHOTOS = 12
LONG_TAG = "Soldier military uniform front"
KEYWORDS = ["2010", "barca", LONG_TAG]
DOCS = Path(__file__).resolve().parents[1] / "docs"


def write_sidecar(photo: Path, keywords: list[str]) -> None:
    items = "".join(f"<rdf:li>{keyword}</rdf:li>" for keyword in keywords)
    photo.with_suffix(".xmp").write_text(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:subject><rdf:Bag>'
        f"{items}</rdf:Bag></dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>", encoding="utf-8")


@pytest.fixture
def window(tmp_path, installed_model, open_window, qtbot):
    """A library of PHOTOS photos, two with keywords in XMP sidecars, and two tags of the user's."""
    photos = make_photos(tmp_path / "photos", PHOTOS)
    for photo in photos[:2]:
        write_sidecar(photo, KEYWORDS)
    window = open_window()
    wait_model(qtbot, window)
    window.add_folders([str(tmp_path / "photos")])
    wait_indexed(qtbot, window, PHOTOS)
    wait_results(qtbot, window, "", PHOTOS)
    model = window.grid_model
    window.tag_photos([model.photo_id(row) for row in range(4)], "family")
    window.tag_photos([model.photo_id(4)], "summer holiday")
    qtbot.waitUntil(lambda: {"family", "summer holiday"} <= set(window.sidebar_data.tag_names), timeout=30000)
    return window


def resize(qtbot, window, width: int, height: int) -> None:
    window.resize(width, height)
    qtbot.waitUntil(lambda: window.size().width() == window.geometry().width())
    QApplication.processEvents()


def run_labels(window, qtbot, labels: str) -> None:
    """Suggest tags from the panel, as a user does: a new label set, its labels, Suggest tags."""
    panel = window.tag_panel
    panel.set_box.setCurrentIndex(panel.set_box.findText(NEW_SET))
    panel.name_field.setText("colours")
    panel.labels_field.setText(labels)
    before = panel.current_set
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel._progress is None and panel.current_set is not before
                    and panel.run_button.isEnabled(), timeout=30000)


class TextRecorder(QPainter):
    """A painter that records the text drawn through it (the sidebar's delegate is Python: its drawText
    calls land here) while painting into an image like the viewport."""

    def __init__(self, device):
        super().__init__(device)
        self.texts: list[str] = []

    def drawText(self, *args):  # noqa: N802 (Qt's name)
        self.texts.append(next(a for a in args if isinstance(a, str)))
        return super().drawText(*args)


def painted_texts(view, index: QModelIndex) -> list[str]:
    """What the sidebar's delegate paints for an entry at its place in the view: name, then count."""
    image = QImage(view.viewport().size(), QImage.Format.Format_ARGB32)
    painter = TextRecorder(image)
    painter.setFont(view.font())
    option = QStyleOptionViewItem()
    option.rect = view.visualRect(index)
    option.font = view.font()
    option.palette = view.palette()
    view.itemDelegate().paint(painter, option, index)
    painter.end()
    return painter.texts


def test_the_window_is_usable_at_800x600_with_the_tagging_panel_open(window, qtbot):
    resize(qtbot, window, 800, 600)
    assert (window.width(), window.height()) == (800, 600)
    qtbot.mouseClick(window.tag_button, Qt.MouseButton.LeftButton)
    panel = window.tag_panel
    qtbot.waitUntil(lambda: panel.isVisible())
    run_labels(window, qtbot, "red, green, blue")
    QApplication.processEvents()
    assert (window.width(), window.height()) == (800, 600)  # the panel did not widen the window

    # The panel is whole inside the window, and the grid keeps two columns of its smallest thumbnails.
    right = panel.mapTo(window, panel.rect().bottomRight())
    assert right.x() < window.width() and right.y() < window.height()
    assert window.grid.viewport().width() >= 3 * 112
    # The panel's help text is hidden or whole: never cut off at its width.
    intro = panel.intro
    assert not intro.isVisible() or intro.height() >= intro.heightForWidth(intro.width())
    # The list shows at least four suggestions whole, as Qt laid them out.
    tree = panel.tree
    rows = [tree.topLevelItem(i).child(j) for i in range(tree.topLevelItemCount())
            for j in range(tree.topLevelItem(i).childCount())]
    whole = [item for item in rows if item.data(0, PHOTO_ID_ROLE) is not None
             and tree.viewport().rect().contains(tree.visualItemRect(item))]
    assert len(rows) >= 4 and len(whole) >= 4
    # Every button of the panel is as wide as its text needs.
    for button in (panel.run_button, panel.accept_above_button, panel.accept_button, panel.reject_button):
        assert button.width() >= button.minimumSizeHint().width(), button.text()
        assert not button.visibleRegion().isEmpty(), button.text()

    # The sidebar gave way to the panel, and its button brings it back (closing the panel: no room for both).
    assert not window.sidebar.isVisible()
    qtbot.mouseClick(window.sidebar_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.sidebar.isVisible() and window.sidebar.width() > 0)
    assert not panel.isVisible() and (window.width(), window.height()) == (800, 600)
    assert window.sidebar.width() >= window.sidebar.minimumSizeHint().width()


def test_sidebar_names_are_never_elided_to_nothing_at_800x600(window, qtbot):
    # Labels named as tags and keywords: their counts read like "4 +7" (tagged, and suggested for more).
    run_labels(window, qtbot, f"family, summer holiday, {LONG_TAG}")
    qtbot.waitUntil(lambda: any(t.suggested and t.photos for t in window.sidebar_data.tags), timeout=30000)
    window.tag_button.setChecked(False)
    resize(qtbot, window, 800, 600)
    # The user drags the splitter to make the sidebar as narrow as it goes.
    window.splitter.setSizes([1, 10000, 0])
    QApplication.processEvents()
    view = window.sidebar.view
    metrics = view.fontMetrics()
    checked = 0
    for index, kind, _value in view.entries():
        texts = painted_texts(view, index)
        name = index.data(Qt.ItemDataRole.DisplayRole)
        shown = texts[0]
        if shown != name:
            start, _, end = shown.partition("…")
            assert len(start) + len(end) >= 10, f"{name!r} painted as {shown!r}"
            assert name.startswith(start) and name.endswith(end)
        # The name and the count side by side fit the entry (an icon before them).
        room = view.visualRect(index).width() - 16 - 26
        assert sum(metrics.horizontalAdvance(text) for text in texts) < room, texts
        checked += 1
    assert checked >= 8


def test_sidebar_sections_collapse_and_stay_collapsed(window, qtbot):
    view = window.sidebar.view
    tags = next(view.items.index(row, 0) for row in range(view.items.rowCount())
                if view.items.index(row, 0).data(Qt.ItemDataRole.DisplayRole) == "Tags")
    family = view.find(TAG, "family")
    assert view.visualRect(family).isValid()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(tags).center())
    assert not view.visualRect(view.find(TAG, "family")).isValid()  # its entries are out of view
    # A refresh (a new tag) keeps it collapsed.
    window.tag_photos([window.grid_model.photo_id(5)], "work")
    qtbot.waitUntil(lambda: "work" in window.sidebar_data.tag_names, timeout=30000)
    assert not view.visualRect(view.find(TAG, "work")).isValid()
    tags = next(view.items.index(row, 0) for row in range(view.items.rowCount())
                if view.items.index(row, 0).data(Qt.ItemDataRole.DisplayRole) == "Tags")
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(tags).center())
    assert view.visualRect(view.find(TAG, "work")).isValid()


def test_keywords_from_the_files_are_a_section_apart_from_the_users_tags(window):
    view = window.sidebar.view
    sections = {}
    for row in range(view.items.rowCount()):
        header = view.items.index(row, 0)
        assert header.data(KIND_ROLE) == HEADER
        sections[header.data(Qt.ItemDataRole.DisplayRole)] = [
            view.items.index(child, 0, header).data(Qt.ItemDataRole.DisplayRole)
            for child in range(view.items.rowCount(header))]
    assert sorted(sections["Keywords"]) == sorted(KEYWORDS)  # what the sidecars hold
    assert [name for name in sections["Tags"] if name != "New tag…"] == ["family", "summer holiday"]


def test_the_sidebar_stays_where_it_was_scrolled_when_a_tag_is_created(window, qtbot, monkeypatch):
    model = window.grid_model
    for number in range(14):  # enough tags that the sidebar scrolls at 800 x 600
        window.tag_photos([model.photo_id(number % PHOTOS)], f"tag {number:02d}")
    qtbot.waitUntil(lambda: "tag 13" in window.sidebar_data.tag_names, timeout=30000)
    resize(qtbot, window, 800, 600)
    view = window.sidebar.view
    bar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    new_tag = view.find(NEW_TAG)
    view.scrollTo(new_tag)  # the user scrolls down to "New tag…"
    scrolled = bar.value()
    assert scrolled > 0

    monkeypatch.setattr("PySide6.QtWidgets.QInputDialog.getText", lambda *a, **k: ("beach", True))
    mime = model.mime_for_rows([6, 7])
    assert drop_mime(view.viewport(), mime, view.visualRect(new_tag).center()) == (True, True)
    qtbot.waitUntil(lambda: "beach" in window.sidebar_data.tag_names, timeout=30000)
    QApplication.processEvents()
    assert bar.value() == scrolled


def test_search_hints_are_clickable_and_fit_the_width(window, qtbot):
    resize(qtbot, window, 800, 600)
    hints = window.search_bar.hint
    shown = [button for button in hints.buttons if button.isVisible()]
    assert shown and hints.help_button.isVisible()
    for button in shown + [hints.help_button]:  # whole, never cut
        assert button.width() >= button.sizeHint().width(), button.text()
        assert button.geometry().right() <= hints.width()
    # The tag example names one of the library's tags.
    assert "tag:family" in [button.text() for button in hints.buttons]
    button = shown[0]
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert window.search_bar.text() == button.text()
    wait_results(qtbot, window, button.text())


def test_query_help_explains_weights_and_runs_an_example(window, qtbot):
    window.search_bar.focus()
    wait_focus_in(qtbot, window)
    press(qtbot, Qt.Key.Key_F1)
    popup = window.search_bar.query_help
    qtbot.waitUntil(lambda: popup.isVisible())
    examples = [button.text() for button in popup.examples]
    meanings = " ".join(label.text() for label in popup.meanings)
    assert "weight" in meanings and '"2:red car" + beach - people' in examples
    # Every example is written as docs/search.md (the query language's reference) writes it.
    reference = (DOCS / "search.md").read_text(encoding="utf-8")
    code_spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", reference, flags=re.DOTALL))
    assert len(examples) >= 8
    for example in examples:
        assert any(example in span for span in code_spans), example
    # Whole on the screen, every example readable.
    assert popup.screen().availableGeometry().contains(popup.frameGeometry())
    for button in popup.examples:
        assert button.width() >= button.sizeHint().width() and not button.visibleRegion().isEmpty()
    press(qtbot, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not popup.isVisible())

    # The ? under the field opens it too; a click on an example runs it.
    qtbot.mouseClick(window.search_bar.hint.help_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: popup.isVisible())
    chosen = popup.examples[2]
    qtbot.mouseClick(chosen, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not popup.isVisible())
    assert window.search_bar.text() == chosen.text()
    wait_results(qtbot, window, chosen.text())


def test_the_photo_view_title_is_never_cut_off(tmp_path, installed_model, open_window, qtbot):
    name = "IMG_20230615_143512_HDR_panorama_harbour_at_dusk_edited_final_v3.jpg"
    photo = make_photos(tmp_path / "photos", 1)[0]
    photo.rename(photo.with_name(name))
    window = open_window()
    wait_model(qtbot, window)
    window.add_folders([str(tmp_path / "photos")])
    wait_indexed(qtbot, window, 1)
    wait_results(qtbot, window, "", 1)
    window.grid.setFocus()
    window.grid.setCurrentIndex(window.grid_model.index(0))
    wait_focus_in(qtbot, window)
    press(qtbot, Qt.Key.Key_Space)
    view = window.photo_view
    qtbot.waitUntil(lambda: view.isVisible())
    title = view.title
    assert title.text() == name
    shown = title.shown_text()
    metrics = title.fontMetrics()
    assert metrics.horizontalAdvance(shown) <= title.contentsRect().width()
    assert title.geometry().right() <= title.parentWidget().width()
    start, ellipsis, end = shown.partition("…")
    assert ellipsis and name.startswith(start) and name.endswith(end) and end.endswith(".jpg")
    assert title.toolTip() == name


def test_thumbnails_are_sharp_at_the_largest_zoom(tmp_path, installed_model, open_window, qtbot):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(7)
    detail = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)  # fine detail: 3 px blocks at 1200 x 900
    original = Image.fromarray(detail).resize((1200, 900), Image.Resampling.NEAREST)
    original.save(folder / "detail.png")
    window = open_window()
    wait_model(qtbot, window)
    window.add_folders([str(folder)])
    wait_indexed(qtbot, window, 1)
    wait_results(qtbot, window, "", 1)
    loaded = []
    window.grid_model.loader.loaded.connect(lambda _photo_id, side, image: loaded.append((side, image)))
    window.zoom.setValue(window.zoom.maximum())  # the user drags the zoom slider to the end
    side = window.grid_model.side
    assert side >= 300
    qtbot.waitUntil(lambda: any(s == side for s, _ in loaded), timeout=30000)
    image = next(image for s, image in loaded if s == side).convertToFormat(QImage.Format.Format_RGB888)
    got = np.frombuffer(image.constBits(), np.uint8).reshape(side, image.bytesPerLine())[:, :side * 3]
    got = got.reshape(side, side, 3).astype(np.float32)
    # The oracle: PIL's cover crop of the original at that side.
    expected = np.asarray(ImageOps.fit(original, (side, side), Image.Resampling.LANCZOS), np.float32)
    # From the 256 px cached thumbnail, enlarged, the 3 px blocks blur to grey: an error of ~40 levels.
    assert np.abs(got - expected).mean() < 20


def test_the_window_opens_inside_the_screen_with_its_sidebar_shown(app, qtbot):
    """Made as `clipdesk` makes it: the whole window fits the screen's free area (the offscreen screen is
    800 x 800), and the sidebar is shown once the window has its size, including a window sized before it
    is shown."""
    from clipdesk.ui.main_window import MainWindow

    room = QApplication.primaryScreen().availableGeometry()
    for size in (None, (1100, 700)):
        window = MainWindow()
        if size:
            window.resize(*size)  # wider than the screen: the first layout happens at show
        try:
            window.show()
            qtbot.waitExposed(window)
            if size is None:
                assert room.contains(window.frameGeometry()), (window.frameGeometry(), room)
            qtbot.waitUntil(window.sidebar.isVisible, timeout=5000)
            assert window.sidebar_button.isChecked()
        finally:
            window.close()
            qtbot.waitUntil(lambda: not window.isVisible(), timeout=60000)
