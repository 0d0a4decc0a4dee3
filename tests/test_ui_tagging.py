"""Tagging in the window: drag photos onto a tag, Delete in a tag's view, the zero-shot panel's review."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from test_ui_support import (app, bundled_dir, drop_mime, drop_urls, installed_model, make_photos,  # noqa: F401
                             open_window, wait_indexed, wait_model, wait_results)

from clipdesk.library.store import Library
from clipdesk.tagging.tags import SUGGESTED, USER, photos_with_tag, tags_of_photos
from clipdesk.ui.library_service import tag_query
from clipdesk.ui.sidebar import FOLDER, NEW_TAG, TAG
from clipdesk.ui.tagging_panel import NEW_SET, PHOTO_ID_ROLE

PHOTOS = 10


@pytest.fixture
def window(tmp_path, installed_model, open_window, qtbot):
    make_photos(tmp_path / "photos", PHOTOS)
    window = open_window()
    wait_model(qtbot, window)
    window.add_folders([str(tmp_path / "photos")])
    wait_indexed(qtbot, window, PHOTOS)
    wait_results(qtbot, window, "", PHOTOS)
    return window


def user_tags() -> dict[int, set[str]]:
    with Library() as library:
        ids = [row[0] for row in library.conn.execute("SELECT id FROM photos")]
        return {photo_id: {tag.name for tag in tags if tag.source == USER}
                for photo_id, tags in tags_of_photos(library, ids).items()}


def entry_center(window, kind: str, value: str = ""):
    view = window.sidebar.view
    index = view.find(kind, value)
    assert index.isValid(), f"no sidebar entry {kind} {value!r}"
    return view.visualRect(index).center()


def test_dragging_photos_onto_a_tag_tags_them(window, qtbot, tmp_path, monkeypatch):
    grid, model = window.grid, window.grid_model
    window.tag_photos([model.photo_id(0)], "beach")
    qtbot.waitUntil(lambda: "beach" in window.sidebar_data.tag_names, timeout=30000)

    for row in (1, 2, 3):
        grid.selectionModel().select(model.index(row), QItemSelectionModel.SelectionFlag.Select)
    dragged = grid.selected_ids()
    mime = model.mime_for_rows(grid.selected_rows())  # what a drag out of the grid carries
    viewport = window.sidebar.view.viewport()
    assert drop_mime(viewport, mime, entry_center(window, FOLDER, str(tmp_path / "photos"))) == (False, False)
    assert drop_mime(viewport, mime, entry_center(window, TAG, "beach")) == (True, True)
    qtbot.waitUntil(lambda: dict(window.sidebar_data and [(t.name, t.photos) for t in window.sidebar_data.tags])
                    .get("beach") == 4, timeout=30000)
    tags = user_tags()
    assert all("beach" in tags[photo_id] for photo_id in dragged + [model.photo_id(0)])

    # Files dragged from a file manager onto "New tag…": the name is asked for.
    monkeypatch.setattr("PySide6.QtWidgets.QInputDialog.getText", lambda *a, **k: ("holiday", True))
    files = [model.path(5), model.path(6)]
    assert drop_urls(viewport, files, entry_center(window, NEW_TAG)) == (True, True)
    qtbot.waitUntil(lambda: "holiday" in window.sidebar_data.tag_names, timeout=30000)
    tags = user_tags()
    assert tags[model.photo_id(5)] >= {"holiday"} and tags[model.photo_id(6)] >= {"holiday"}
    assert "holiday" not in tags[model.photo_id(7)]


def test_delete_removes_the_tag_in_the_tags_view(window, qtbot):
    model = window.grid_model
    ids = [model.photo_id(row) for row in range(3)]
    window.tag_photos(ids, "work")
    qtbot.waitUntil(lambda: "work" in window.sidebar_data.tag_names, timeout=30000)
    qtbot.mouseClick(window.sidebar.view.viewport(), Qt.MouseButton.LeftButton,
                     pos=entry_center(window, TAG, "work"))
    results = wait_results(qtbot, window, tag_query("work"), 3)
    assert results.tag_view == "work" and window.view_title.text() == "Tag: work"
    window.grid.setFocus()
    window.grid.setCurrentIndex(model.index(0))
    window.grid.selectionModel().select(model.index(1), QItemSelectionModel.SelectionFlag.Select)
    qtbot.keyClick(window.grid, Qt.Key.Key_Delete)
    wait_results(qtbot, window, tag_query("work"), 1)
    with Library() as library:
        assert len(photos_with_tag(library, "work")) == 1


def run_panel(window, qtbot, labels: str, selection: bool = False):
    panel = window.tag_panel
    window.tag_button.setChecked(True)
    assert panel.isVisible()
    panel.set_box.setCurrentIndex(panel.set_box.findText(NEW_SET))
    panel.name_field.setText("colours")
    panel.labels_field.setText(labels)
    panel.scope_selection.setChecked(selection)
    panel.scope_library.setChecked(not selection)
    before = panel.current_set
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel._progress is None and panel.current_set is not before
                    and panel.run_button.isEnabled(), timeout=30000)
    return panel


def suggestion_items(panel):
    tree = panel.tree
    return [tree.topLevelItem(i).child(j) for i in range(tree.topLevelItemCount())
            for j in range(tree.topLevelItem(i).childCount())
            if tree.topLevelItem(i).child(j).data(0, PHOTO_ID_ROLE) is not None]


def test_label_words_the_model_never_learned_are_named_in_the_status_bar(window, qtbot):
    from clipdesk.runtime.lexicon import Entry, Lexicon

    window.service._searcher.clip.text.__dict__["lexicon"] = Lexicon(
        {"red", "green"}, {"penguin": Entry(("sea bird",), "a flightless bird")})
    notes = []
    window.service.message.connect(notes.append)
    run_panel(window, qtbot, "red, penguin, green")
    qtbot.waitUntil(lambda: any("never learned" in note for note in notes), timeout=30000)
    assert [note for note in notes if "never learned" in note] == [
        "tiny-random never learned 'penguin' (also read as 'sea bird')"]


def test_tagging_panel_suggests_then_accepts_and_rejects(window, qtbot):
    panel = run_panel(window, qtbot, "red, green, blue")
    items = suggestion_items(panel)
    pending = sum(len(photos) for photos in panel.pending.values())
    assert len(items) == pending > 2
    groups = [panel.tree.topLevelItem(i).text(0) for i in range(panel.tree.topLevelItemCount())]
    assert groups == ["red", "green", "blue", "None of these"]
    qtbot.waitUntil(lambda: "colours" in [s.name for s in window.sidebar_data.label_sets], timeout=30000)

    accepted, rejected = items[0], items[1]
    accepted_id, label = accepted.data(0, PHOTO_ID_ROLE), accepted.text(0) and accepted.parent().text(0)
    rejected_id, rejected_label = rejected.data(0, PHOTO_ID_ROLE), rejected.parent().text(0)
    accepted.setSelected(True)
    assert panel.accept_button.isEnabled()
    qtbot.mouseClick(panel.accept_button, Qt.MouseButton.LeftButton)
    panel.tree.clearSelection()
    rejected.setSelected(True)
    qtbot.mouseClick(panel.reject_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: label in user_tags()[accepted_id], timeout=30000)
    with Library() as library:
        qtbot.waitUntil(lambda: not any(t.name == rejected_label for t in tags_of_photos(library, [rejected_id])
                                        [rejected_id]), timeout=30000)
    assert len(suggestion_items(panel)) == pending - 2

    # Everything left, at any confidence: the threshold slider at 0.
    panel.threshold.setValue(0)
    assert panel.accept_above_button.text().startswith(f"Accept {pending - 2} ")
    qtbot.mouseClick(panel.accept_above_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: sum(bool(tags) for tags in user_tags().values()) == pending - 1, timeout=30000)
    assert rejected_label not in user_tags()[rejected_id]
    with Library() as library:
        left = [tag for tags in tags_of_photos(library, [rejected_id]).values() for tag in tags
                if tag.source == SUGGESTED]
    assert left == []  # the rejected suggestion is gone, not waiting to be reviewed again


def test_tagging_panel_over_the_selection_only(window, qtbot):
    model = window.grid_model
    chosen = [model.photo_id(row) for row in (2, 4, 6)]
    window.grid.select_ids(chosen)
    panel = run_panel(window, qtbot, "sea, mountain", selection=True)
    assert panel.scope_selection.text() == "Selected photos (3)"
    listed = {item.data(0, PHOTO_ID_ROLE) for item in suggestion_items(panel)}
    assert listed and listed <= set(chosen)
    with Library() as library:  # only the selected photos were scored and got suggestions
        suggested = {photo_id for photo_id, tags in tags_of_photos(library, model.results.ids.tolist()).items()
                     if any(tag.source == SUGGESTED for tag in tags)}
    assert suggested == listed
    panel.threshold.setValue(0)
    qtbot.mouseClick(panel.accept_above_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: all(user_tags()[photo_id] for photo_id in listed), timeout=30000)
    assert not any(user_tags()[photo_id] for photo_id in set(user_tags()) - set(chosen))


def test_tagging_panel_says_what_is_missing(window, qtbot):
    panel = window.tag_panel
    window.tag_button.setChecked(True)
    panel.set_box.setCurrentIndex(panel.set_box.findText(NEW_SET))
    panel.labels_field.setText("cat, dog")
    panel.name_field.setText("")
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert "name" in panel.status.text()
    panel.name_field.setText("pets")
    panel.labels_field.setText(" , ")
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert "no labels" in panel.status.text()
    panel.labels_field.setText("cat, dog")
    panel.scope_selection.setChecked(True)
    window.grid.clearSelection()
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert "Select photos" in panel.status.text()
    assert panel.run_button.isEnabled()
