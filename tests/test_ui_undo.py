"""Undo and redo in the window: Ctrl+Z / Ctrl+Shift+Z on the focused widget and Edit → Undo / Redo put
every change to tags and folders back, bulk ones in one step, after a restart too. The expected states
are read from the database directly."""

from __future__ import annotations

import sqlite3

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication
from test_ui_support import (app, bundled_dir, installed_model, open_window, wait_indexed, wait_model,  # noqa: F401
                             wait_results)
from test_ui_tagging import PHOTOS, entry_center, run_panel, suggestion_items, window  # noqa: F401

from clipdesk import paths
from clipdesk.ui.library_service import tag_query
from clipdesk.ui.sidebar import FOLDER, TAG
from clipdesk.ui.tagging_panel import PHOTO_ID_ROLE


def db_state() -> tuple:
    """Every tag row, rejection, photo and folder, read with a connection of the test's own."""
    conn = sqlite3.connect(paths.database_path())
    try:
        return (conn.execute("SELECT pt.photo_id, t.name, pt.source, pt.confidence FROM photo_tags AS pt "
                             "JOIN tags AS t ON t.id = pt.tag_id ORDER BY 1, 2").fetchall(),
                conn.execute("SELECT r.photo_id, t.name FROM tag_rejections AS r JOIN tags AS t ON t.id = r.tag_id "
                             "ORDER BY 1, 2").fetchall(),
                conn.execute("SELECT id, path FROM photos ORDER BY id").fetchall(),
                conn.execute("SELECT path FROM folders").fetchall())
    finally:
        conn.close()


class Dialogs:
    """Titles of the modal dialogs that open while it watches; each is dismissed at once, so none blocks."""

    def __init__(self):
        self.titles: list[str] = []
        self.timer = QTimer()
        self.timer.timeout.connect(self._look)
        self.timer.start(20)

    def _look(self) -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is not None:
            self.titles.append(dialog.windowTitle())
            dialog.reject()


def user_rows() -> list[tuple]:
    return [row for row in db_state()[0] if row[2] == "user"]


def press(qtbot, key, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """A key the way a user types it: to whichever widget has the focus."""
    focused = QApplication.focusWidget()
    assert focused is not None
    qtbot.keyClick(focused, key, modifiers)


def undo_keys(qtbot, window) -> None:
    window.grid.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.grid)
    press(qtbot, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)


def edit_action(window, text: str):
    """The Edit menu's action whose text starts with `text` (a real menu of the window's menu bar)."""
    menu = next(action.menu() for action in window.menuBar().actions() if action.text() == "&Edit")
    return next((action for action in menu.actions() if action.text().replace("&", "").startswith(text)), None)


def offered(window, text: str) -> bool:
    action = edit_action(window, text)
    return action is not None and action.isEnabled()


def test_ctrl_z_undoes_a_bulk_accept_exactly_and_the_manual_tag_wins(window, qtbot):
    panel = run_panel(window, qtbot, "red, green, blue")
    # The user tags a photo by hand with another label of the set while its suggestion is still listed.
    listed = suggestion_items(panel)[0]
    mine, suggested_label = listed.data(0, PHOTO_ID_ROLE), listed.parent().text(0)
    other = next(label for label in ("red", "green", "blue") if label != suggested_label)
    window.tag_photos([mine], other)
    qtbot.waitUntil(lambda: (mine, other, "user", None) in user_rows(), timeout=30000)
    # The hand-tagged photo's suggestion is gone from the library and from the panel's list.
    qtbot.waitUntil(lambda: mine not in {item.data(0, PHOTO_ID_ROLE) for item in suggestion_items(panel)}, timeout=30000)
    before = db_state()
    assert [row for row in before[0] if row[0] == mine] == [(mine, other, "user", None)]
    pending = sum(len(photos) for photos in panel.pending.values())

    panel.threshold.setValue(0)
    qtbot.mouseClick(panel.accept_above_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(user_rows()) == pending + 1, timeout=30000)
    accepted = db_state()
    assert [row for row in accepted[0] if row[0] == mine] == [(mine, other, "user", None)]
    qtbot.waitUntil(lambda: offered(window, "Undo Accept"), timeout=10000)
    text = edit_action(window, "Undo").text().replace("&", "")
    assert text.startswith("Undo Accept ") and text.endswith(f" on {pending} photos")  # one step for all

    undo_keys(qtbot, window)
    qtbot.waitUntil(lambda: db_state() == before, timeout=30000)
    # The panel lists the suggestions again, as the library holds them.
    qtbot.waitUntil(lambda: len(suggestion_items(panel)) == pending, timeout=30000)

    # Redo is offered once the undo's step is read back from the library (a worker): only then does the key act.
    qtbot.waitUntil(lambda: offered(window, "Redo Accept"), timeout=10000)
    window.grid.setFocus()
    press(qtbot, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: db_state() == accepted, timeout=30000)
    qtbot.waitUntil(lambda: offered(window, "Undo Accept"), timeout=10000)
    edit_action(window, "Undo Accept").trigger()  # Edit → Undo
    qtbot.waitUntil(lambda: db_state() == before, timeout=30000)
    qtbot.waitUntil(lambda: offered(window, "Redo Accept"), timeout=10000)
    edit_action(window, "Redo Accept").trigger()
    qtbot.waitUntil(lambda: db_state() == accepted, timeout=30000)


def test_ctrl_z_undoes_a_label_set_run_in_one_step_and_the_panel_lists_what_the_library_holds(window, qtbot):
    panel = run_panel(window, qtbot, "red, green")
    first = db_state()
    qtbot.waitUntil(lambda: len(suggestion_items(panel)) == sum(row[2] == "suggested" for row in first[0]),
                    timeout=30000)
    panel.labels_field.setText("red, green, blue")  # the same set with one more label, run again
    before = panel.current_set
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel._progress is None and panel.current_set is not before
                    and panel.run_button.isEnabled(), timeout=30000)
    second = db_state()
    assert second[0] != first[0]  # other confidences: the labels compete with one more
    qtbot.waitUntil(lambda: offered(window, "Undo Run label set “colours”"), timeout=10000)

    undo_keys(qtbot, window)
    qtbot.waitUntil(lambda: db_state() == first, timeout=30000)  # names, sources, confidences as they were
    qtbot.waitUntil(lambda: len(suggestion_items(panel)) == sum(row[2] == "suggested" for row in first[0])
                    and offered(window, "Redo Run label set"), timeout=30000)
    window.grid.setFocus()
    press(qtbot, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: db_state() == second, timeout=30000)
    undo_keys(qtbot, window)
    qtbot.waitUntil(lambda: db_state() == first, timeout=30000)
    undo_keys(qtbot, window)  # the first run: no suggestions left
    qtbot.waitUntil(lambda: db_state()[0] == [], timeout=30000)
    qtbot.waitUntil(lambda: suggestion_items(panel) == [], timeout=30000)


def test_select_all_and_delete_in_a_tag_view_then_undo_several_steps_after_a_restart(window, qtbot, open_window):
    model = window.grid_model
    window.tag_photos([model.photo_id(row) for row in range(6)], "work")
    qtbot.waitUntil(lambda: "work" in window.sidebar_data.tag_names, timeout=30000)
    window.tag_photos([model.photo_id(row) for row in range(2)], "home")
    qtbot.waitUntil(lambda: "home" in window.sidebar_data.tag_names, timeout=30000)
    tagged = db_state()
    dialogs = Dialogs()
    qtbot.mouseClick(window.sidebar.view.viewport(), Qt.MouseButton.LeftButton,
                     pos=entry_center(window, TAG, "work"))
    wait_results(qtbot, window, tag_query("work"), 6)
    window.grid.setFocus()
    press(qtbot, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    press(qtbot, Qt.Key.Key_Delete)  # no confirmation: undo helps
    wait_results(qtbot, window, tag_query("work"), 0)
    qtbot.waitUntil(lambda: not any(row[1] == "work" for row in db_state()[0]), timeout=30000)
    untagged = db_state()
    # Delete the other tag from the sidebar's menu, then remove the folder: no dialog either.
    window.sidebar.view.deleteTagRequested.emit("home")
    qtbot.waitUntil(lambda: db_state()[0] == [], timeout=30000)
    no_tags = db_state()
    window.sidebar.view.removeFolderRequested.emit(window.sidebar_data.folders[0][0].path)
    qtbot.waitUntil(lambda: db_state()[2] == [], timeout=30000)
    assert dialogs.titles == []  # no confirmation where undo helps
    qtbot.waitUntil(lambda: offered(window, "Undo Remove folder"), timeout=10000)

    window.close()  # a restart: the history lives in the library
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=60000)
    again = open_window()
    wait_model(qtbot, again)
    qtbot.waitUntil(lambda: offered(again, "Undo Remove folder"), timeout=10000)
    undo_keys(qtbot, again)
    qtbot.waitUntil(lambda: db_state() == no_tags, timeout=30000)
    wait_indexed(qtbot, again, PHOTOS)  # the folder's photos are indexed again, with their ids
    assert [index.isValid() for index in [again.sidebar.view.find(FOLDER, no_tags[3][0][0].decode())]] == [True]
    assert db_state() == no_tags
    for expected in (untagged, tagged):
        qtbot.waitUntil(lambda: offered(again, "Undo"), timeout=10000)
        undo_keys(qtbot, again)
        qtbot.waitUntil(lambda e=expected: db_state() == e, timeout=30000)
