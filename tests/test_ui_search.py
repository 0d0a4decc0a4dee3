"""The search bar and the grid: typing ranks photos, drops search by image, the grid loads thumbnails,
handles keys, the context menu's targets and 100,000 photos."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from PySide6.QtCore import QItemSelectionModel, Qt, QTimer
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication
from test_ui_support import (MODEL_NAME, app, bundled_dir, drop_urls, installed_model, open_indexed,  # noqa: F401
                             make_photos, open_window, press, wait_focus_in, wait_indexed, wait_model,
                             wait_results)

from clipdesk.library.indexer import index_folders
from clipdesk.library.store import Library
from clipdesk.search.searcher import Searcher
from clipdesk.tagging.tags import tags_of_photos
from clipdesk.ui.library_service import ResultSet
from clipdesk.ui.photo_grid import (FAILED_ROLE, PHOTO_IDS_MIME, SCORE_ROLE, THUMBNAIL_ROLE, PhotoGridModel,
                                    PhotoGridView, photo_ids_from_mime)
from clipdesk.ui.thumbnails import ThumbnailLoader


@pytest.fixture
def indexed_window(tmp_path, installed_model, open_window, qtbot):
    photos = make_photos(tmp_path / "photos", 16)
    return open_indexed(open_window, qtbot, tmp_path / "photos", len(photos)), photos


def test_the_search_index_is_loaded_once_the_model_is_before_any_search(tmp_path, installed_model, open_window,
                                                                        qtbot):
    photos = make_photos(tmp_path / "photos", 5)
    with Library() as library:
        index_folders(library, [tmp_path / "photos"], MODEL_NAME)
    window = open_window()
    wait_model(qtbot, window)
    window.service.search = lambda text: pytest.fail(f"searched for {text!r}")
    qtbot.waitUntil(lambda: window.service._searcher._loaded, timeout=20000)
    assert len(window.service._searcher._index) == len(photos)


def test_typing_a_query_shows_ranked_results_once_typing_pauses(indexed_window, qtbot):
    window, photos = indexed_window
    asked = []
    original = window.service.search
    window.service.search = lambda text: (asked.append(text), original(text))[1]

    qtbot.keyClicks(window.search_bar.field, "red car")
    results = wait_results(qtbot, window, "red car")
    assert asked == ["red car"]  # one search for seven keystrokes: debounced

    with Library() as library:
        expected = Searcher(library, MODEL_NAME).search("red car", k=100)
    assert results.ids.tolist() == [hit.photo_id for hit in expected]
    assert np.allclose(results.scores, [hit.score for hit in expected], atol=1e-6)
    assert np.all(np.diff(results.scores) <= 0)  # best first
    model = window.grid_model
    assert model.rowCount() == len(photos)
    assert model.index(0).data(SCORE_ROLE) == pytest.approx(float(results.scores[0]))
    assert "similarity" in model.index(0).data(Qt.ItemDataRole.ToolTipRole)
    assert window.view_title.text() == "“red car”"


def test_words_the_model_never_learned_are_named_in_the_status_bar(indexed_window, qtbot):
    from clipdesk.runtime.lexicon import Entry, Lexicon

    window, _ = indexed_window
    text_encoder = window.service._searcher.clip.text
    text_encoder.__dict__["lexicon"] = Lexicon({"red", "car", "sea", "bird"}, {"penguin": Entry(("sea bird",), "")})
    qtbot.keyClicks(window.search_bar.field, "red penguin")
    wait_results(qtbot, window, "red penguin")
    qtbot.waitUntil(lambda: "never learned 'penguin' (also read as 'sea bird')" in window.status.note_label.text())
    window.status.note("", 0)
    window.search_bar.field.clear()
    qtbot.keyClicks(window.search_bar.field, "red car")
    wait_results(qtbot, window, "red car")
    qtbot.wait(50)
    assert "never learned" not in window.status.note_label.text()


def test_the_note_about_a_query_goes_with_its_results(indexed_window, qtbot):
    from clipdesk.runtime.lexicon import Entry, Lexicon

    window, _ = indexed_window
    text_encoder = window.service._searcher.clip.text
    text_encoder.__dict__["lexicon"] = Lexicon({"red", "car", "sea", "bird"}, {"penguin": Entry(("sea bird",), "")})
    window.search_bar.focus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.search_bar.field)
    qtbot.keyClicks(QApplication.focusWidget(), "red penguin")
    wait_results(qtbot, window, "red penguin")
    qtbot.waitUntil(lambda: "never learned 'penguin'" in window.status.note_label.text())
    field = QApplication.focusWidget()
    qtbot.keyClick(field, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(field, "red car")
    wait_results(qtbot, window, "red car")
    assert "never learned" not in window.status.note_label.text()  # at once, not seconds later


def test_a_query_that_does_not_parse_says_why_under_the_field(indexed_window, qtbot):
    window, _ = indexed_window
    window.search_bar.set_query('beach "unclosed')
    qtbot.waitUntil(lambda: window.search_bar.error.isVisibleTo(window), timeout=30000)
    assert "unclosed quote" in window.search_bar.error.text()
    assert "\n" not in window.search_bar.error.text()
    window.search_bar.set_query("beach")
    wait_results(qtbot, window, "beach")
    assert not window.search_bar.error.isVisibleTo(window)


def test_dropping_a_photo_on_the_search_bar_finds_similar_ones(indexed_window, qtbot):
    window, photos = indexed_window
    moved, dropped = drop_urls(window.search_bar.field, [photos[5]])
    assert moved and dropped
    assert window.search_bar.text().startswith("like:")
    results = wait_results(qtbot, window, window.search_bar.text())
    with Library() as library:
        own_id = library.photo_id(photos[5])
    assert results.ids[0] == own_id and results.scores[0] == pytest.approx(1.0, abs=1e-3)
    assert window.view_title.text() == "Similar photos"


def test_find_similar_from_the_grid_and_keys(indexed_window, qtbot):
    window, photos = indexed_window
    grid, model = window.grid, window.grid_model
    opened, previews = [], []
    grid.openRequested.disconnect()
    grid.openRequested.connect(opened.append)
    grid.previewRequested.disconnect()
    grid.previewRequested.connect(previews.append)
    grid.setFocus()
    grid.setCurrentIndex(model.index(0))
    qtbot.keyClick(grid, Qt.Key.Key_Right)
    assert grid.currentIndex().row() == 1
    qtbot.keyClick(grid, Qt.Key.Key_Space)
    assert previews == [1]
    qtbot.keyClick(grid, Qt.Key.Key_Return)
    assert opened == [[model.path(1)]]
    qtbot.keyClick(grid, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert len(grid.selected_ids()) == len(photos)

    chosen = model.photo_id(3)  # kept before the action: afterwards the grid holds its results
    grid.findSimilarRequested.emit(model.path(3))
    results = wait_results(qtbot, window, window.search_bar.text())
    assert window.search_bar.text().startswith("like:") and results.ids[0] == chosen


def choose_from_context_menu(qtbot, grid, row: int, action_text: str) -> None:
    """Open the grid's context menu on the cell of `row` with the event a right-click there delivers, and
    pick an action in the menu once it shows (the menu runs its own event loop until then)."""
    picked = []

    def pick():
        menu = QApplication.activePopupWidget()
        if menu is None:
            QTimer.singleShot(10, pick)
            return
        action = next(action for action in menu.actions() if action.text() == action_text)
        picked.append(action.text())
        menu.hide()
        action.trigger()

    QTimer.singleShot(0, pick)
    position = grid.visualRect(grid.model().index(row)).center()
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, position, grid.viewport().mapToGlobal(position))
    QApplication.sendEvent(grid.viewport(), event)
    assert picked == [action_text]


def test_the_context_menu_acts_on_the_clicked_photo(indexed_window, qtbot):
    window, _ = indexed_window
    grid, model = window.grid, window.grid_model
    shown = []
    grid.showInFolderRequested.disconnect()
    grid.showInFolderRequested.connect(shown.append)
    grid.select_ids([model.photo_id(1), model.photo_id(2)])
    clicked_id, clicked_path = model.photo_id(2), model.path(2)  # kept before the action changes the grid
    choose_from_context_menu(qtbot, grid, 2, "Show in folder")
    assert shown == [clicked_path]
    assert grid.selected_ids() == [model.photo_id(1), clicked_id]  # a right-click keeps the selection
    choose_from_context_menu(qtbot, grid, 2, "Find similar")
    results = wait_results(qtbot, window, window.search_bar.text())
    assert window.search_bar.text().startswith("like:") and results.ids[0] == clicked_id


def test_photo_view_shows_facts_and_steps_through_the_grid(indexed_window, qtbot):
    window, photos = indexed_window
    view, grid = window.photo_view, window.grid
    assert window.results.names == [photo.name for photo in photos]  # row i shows photo000i.jpg
    grid.setFocus()
    grid.setCurrentIndex(window.grid_model.index(2))
    wait_focus_in(qtbot, window)
    press(qtbot, Qt.Key.Key_Space)  # on the grid: opens the view
    qtbot.waitUntil(lambda: view.isVisible() and view.facts.rowCount() > 0, timeout=30000)
    wait_focus_in(qtbot, view)
    assert view.title.text() == "photo0002.jpg"
    hint = view.hint  # the keys are told in full, not cut between the step buttons
    assert hint.contentsRect().width() >= hint.fontMetrics().horizontalAdvance(hint.text()), hint.text()
    assert any(view.facts.itemAt(row, view.facts.ItemRole.FieldRole).widget().text().startswith("96 × 72")
               for row in range(view.facts.rowCount()))
    qtbot.waitUntil(lambda: view.canvas.pixmap is not None and view.canvas.pixmap.width() == 96, timeout=30000)

    press(qtbot, Qt.Key.Key_Right)
    press(qtbot, Qt.Key.Key_Right)
    assert view.title.text() == "photo0004.jpg" and grid.currentIndex().row() == 4
    press(qtbot, Qt.Key.Key_Left)
    assert view.title.text() == "photo0003.jpg" and grid.currentIndex().row() == 3
    qtbot.mouseClick(view.next_button, Qt.MouseButton.LeftButton)
    assert view.title.text() == "photo0004.jpg"
    qtbot.mouseClick(view.previous_button, Qt.MouseButton.LeftButton)
    assert view.title.text() == "photo0003.jpg"

    # Whatever button has the focus (a click or Tab put it there), the arrows step and Space closes.
    shown_in_folder = []
    view.showInFolderRequested.connect(shown_in_folder.append)
    for button, name in ((view.similar_button, "photo0004.jpg"), (view.open_button, "photo0005.jpg"),
                         (view.folder_button, "photo0006.jpg"), (view.next_button, "photo0007.jpg")):
        button.setFocus()
        assert press(qtbot, Qt.Key.Key_Right) is button
        assert view.title.text() == name
    press(qtbot, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not view.isVisible())
    assert shown_in_folder == [] and window.search_bar.text() == ""  # no button was pressed


def test_photo_view_adds_and_removes_a_tag_typed_with_completion(indexed_window, qtbot):
    window, _ = indexed_window
    view = window.photo_view
    window.service.tag_photos("dog", [window.grid_model.photo_id(0)])
    qtbot.waitUntil(lambda: view.tag_names.stringList() == ["dog"])
    window.grid.previewRequested.emit(1)
    qtbot.waitUntil(lambda: view.isVisible() and view.tags.text() != "…", timeout=30000)
    wait_focus_in(qtbot, view)
    photo_id = view.photo_id

    def tags_of_photo():
        with Library() as library:
            return [(tag.name, tag.source) for tag in tags_of_photos(library, [photo_id])[photo_id]]

    press(qtbot, Qt.Key.Key_T)
    assert QApplication.focusWidget() is view.tag_field
    qtbot.keyClicks(QApplication.focusWidget(), "o")
    completer = view.tag_field.completer()
    assert completer.currentCompletion() == "dog"  # "o" is in "dog": completions match anywhere
    qtbot.waitUntil(completer.popup().isVisible)
    assert press(qtbot, Qt.Key.Key_Down) is completer.popup()
    press(qtbot, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tags_of_photo() == [("dog", "user")])
    qtbot.waitUntil(lambda: view.tags.text() == "dog")

    qtbot.keyClicks(QApplication.focusWidget(), "dog")
    assert view.tag_button.text() == "Remove"  # typing a tag the photo has offers to remove it
    press(qtbot, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tags_of_photo() == [])
    qtbot.waitUntil(lambda: view.tags.text().startswith("No tags yet"))

    qtbot.keyClicks(QApplication.focusWidget(), "red car")  # Space types in the field, it does not close
    press(qtbot, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tags_of_photo() == [("red car", "user")])
    assert view.isVisible() and view.title.text() == "photo0001.jpg"


def test_thumbnails_arrive_after_a_placeholder_and_photos_drag_out_as_urls(indexed_window, qtbot):
    window, photos = indexed_window
    model = window.grid_model
    window.grid_model.set_results(window.results)  # fresh: the cache keeps pixmaps, so use a cold row
    model._cache.clear()
    index = model.index(4)
    assert index.data(THUMBNAIL_ROLE) is None  # placeholder now, loading in the background
    qtbot.waitUntil(lambda: index.data(THUMBNAIL_ROLE) is not None, timeout=30000)
    pixmap = index.data(THUMBNAIL_ROLE)
    assert pixmap.width() == pixmap.height() == model.side
    assert index.data(FAILED_ROLE) is None

    window.grid.selectionModel().select(model.index(1), QItemSelectionModel.SelectionFlag.Select)
    window.grid.selectionModel().select(model.index(2), QItemSelectionModel.SelectionFlag.Select)
    mime = model.mimeData(window.grid.selectionModel().selectedIndexes())
    assert [url.toLocalFile() for url in mime.urls()] == [model.path(1), model.path(2)]
    assert photo_ids_from_mime(mime) == [model.photo_id(1), model.photo_id(2)]
    assert json.loads(bytes(mime.data(PHOTO_IDS_MIME))) == [model.photo_id(1), model.photo_id(2)]


def test_grid_holds_100000_photos_and_scrolls_without_loading_them_all(app, qtbot, tmp_path):
    with Library(tmp_path / "empty.db") as library:
        loader = ThumbnailLoader(library)
        model = PhotoGridModel(loader)
        view = PhotoGridView(model)
        qtbot.addWidget(view)
        view.resize(1000, 700)
        view.show()

        def fill_and_scroll(results: ResultSet) -> float:
            """Seconds to show the results, scroll to the end and to the middle."""
            started = time.perf_counter()
            model.set_results(results)
            view.scrollToBottom()
            app.processEvents()
            view.scrollTo(model.index(len(results) // 2))
            app.processEvents()
            return time.perf_counter() - started

        # Against the same view with a tenth of the rows rather than a fixed limit: the names list and the
        # id map grow with the rows, layout, painting and scrolling must not (measured: 3-4 times as long).
        # Best of five each, taken in turns, so that a busy moment of the machine does not fall on one size.
        sets = [ResultSet("", ids, [f"/photos/{i:06d}.jpg" for i in ids], None)
                for ids in (np.arange(1, count + 1, dtype=np.int64) for count in (10_000, 100_000))]
        times = [[fill_and_scroll(results) for results in sets] for _ in range(5)]
        small, large = (min(column) for column in zip(*times))
        assert model.rowCount() == 100_000
        assert large < 6 * small, f"100,000 rows took {large * 1000:.0f} ms, 10,000 took {small * 1000:.0f} ms"
        # Only cells on screen asked for thumbnails (ids that do not exist fail fast, as a broken image).
        qtbot.waitUntil(lambda: len(model._failed) > 0, timeout=30000)
        assert len(model._failed) < 200
        view.selectAll()
        assert len(view.selected_rows()) == 100_000
        loader.stop()


def test_thumbnail_loader_reads_hashes_in_batches_and_remakes_lost_thumbnails(indexed_window, qtbot, monkeypatch):
    from clipdesk.library.thumbnails import thumbnail_cache

    window, photos = indexed_window
    ids = window.results.ids.tolist()
    library = Library()  # its own: the window's grid loads thumbnails meanwhile
    batches = []
    original = library.content_hashes
    monkeypatch.setattr(library, "content_hashes", lambda wanted: batches.append(list(wanted))
                        or original(batches[-1]))
    monkeypatch.setattr(library, "photo", lambda *_: pytest.fail("one query per thumbnail"))
    lost = original([ids[0]])[ids[0]]
    thumbnail_cache().discard(lost)  # the cache lost one: made again from the photo
    loader = ThumbnailLoader(library, threads=1)
    loaded, failed = {}, {}
    loader.loaded.connect(lambda photo_id, side, image: loaded.__setitem__(photo_id, image))
    loader.failed.connect(lambda photo_id, message: failed.__setitem__(photo_id, message))
    for photo_id in [*ids, 10**9]:
        loader.request(photo_id, 40)
    qtbot.waitUntil(lambda: len(loaded) + len(failed) == len(ids) + 1, timeout=30000)
    loader.stop()
    library.close()
    assert set(loaded) == set(ids) and all(image.width() == image.height() == 40 for image in loaded.values())
    assert failed == {10**9: "this photo is no longer in the library"}
    assert thumbnail_cache().get(lost)
    assert len(batches) < len(ids) and sum(map(len, batches)) == len(ids) + 1


def test_the_header_shows_a_quoted_query_once_and_a_missing_opener_is_said(indexed_window, qtbot, monkeypatch):
    window, _ = indexed_window
    typed = '"2:red car" - sea'
    window.search_bar.focus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.search_bar.field)
    qtbot.keyClicks(QApplication.focusWidget(), typed)
    wait_results(qtbot, window, typed)
    assert window.view_title.text() == typed  # its own quotes, not wrapped in more

    # The offscreen platform has no application to open files or folders, like a bare desktop.
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    window.grid.setFocus()
    window.grid.setCurrentIndex(window.grid_model.index(0))
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.grid)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
    assert window.status.note_label.text().startswith("Could not open 1 photo: no application is set up")
    window.grid.showInFolderRequested.emit(window.grid_model.path(0))  # the grid menu's "Show in folder"
    assert window.status.note_label.text().startswith(f"Could not show {window.grid_model.path(0).split('/')[-1]}")


def test_the_photo_view_names_a_camera_once(tmp_path, installed_model, open_window, qtbot):
    """EXIF Make "Canon" with Model "Canon DIGITAL IXUS i7 zoom" reads "Canon DIGITAL IXUS i7 zoom"; a model
    without its maker's name keeps both ("FUJIFILM X-T3")."""
    from PIL import Image

    folder = tmp_path / "cameras"
    folder.mkdir()
    for name, make, camera in (("a-canon.jpg", "Canon", "Canon DIGITAL IXUS i7 zoom"),
                               ("b-fuji.jpg", "FUJIFILM", "X-T3")):
        exif = Image.Exif()
        exif[0x010F], exif[0x0110] = make, camera  # Make, Model
        Image.new("RGB", (64, 48), name[0] == "a" and "red" or "blue").save(folder / name, exif=exif)
    window = open_window()
    wait_model(qtbot, window)
    window.add_folders([str(folder)])
    wait_indexed(qtbot, window, 2)
    wait_results(qtbot, window, "", 2)
    view, grid = window.photo_view, window.grid
    seen = {}
    for row in range(2):
        window.activateWindow()  # a window manager does this when the view closes; offscreen has none
        grid.setFocus()
        grid.setCurrentIndex(window.grid_model.index(row))
        wait_focus_in(qtbot, window)
        press(qtbot, Qt.Key.Key_Space)  # opens the view
        qtbot.waitUntil(lambda: view.isVisible() and view.facts.rowCount() > 0, timeout=30000)
        facts = {view.facts.itemAt(r, view.facts.ItemRole.LabelRole).widget().text().rstrip(":"):
                 view.facts.itemAt(r, view.facts.ItemRole.FieldRole).widget().text()
                 for r in range(view.facts.rowCount())}
        seen[view.title.text()] = facts.get("Camera")
        wait_focus_in(qtbot, view)
        press(qtbot, Qt.Key.Key_Space)  # closes it
        qtbot.waitUntil(lambda: not view.isVisible())
    assert seen == {"a-canon.jpg": "Canon DIGITAL IXUS i7 zoom", "b-fuji.jpg": "FUJIFILM X-T3"}
