"""The tagging panel shows what the library holds: after a restart it opens on a saved label set with
its stored suggestions, and after a model switch it no longer lists the old model's suggestions as
current. The expected suggestions are read from the database directly."""

from __future__ import annotations

import sqlite3

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from test_ui_support import (MODEL_NAME, app, bundled_dir, installed_model, open_window,  # noqa: F401
                             wait_model, wait_results)
from test_ui_tagging import PHOTOS, run_panel, suggestion_items, window  # noqa: F401

from clipdesk import paths
from clipdesk.ui.tagging_panel import LABEL_ROLE, PHOTO_ID_ROLE


def stored_suggestions(labels: list[str]) -> set[tuple[str, int]]:
    conn = sqlite3.connect(paths.database_path())
    try:
        marks = ",".join("?" * len(labels))
        return set(conn.execute("SELECT t.name, pt.photo_id FROM photo_tags AS pt JOIN tags AS t ON t.id = pt.tag_id "
                                f"WHERE pt.source = 'suggested' AND t.name IN ({marks})", labels).fetchall())
    finally:
        conn.close()


def listed(panel) -> set[tuple[str, int]]:
    return {(item.data(0, LABEL_ROLE), item.data(0, PHOTO_ID_ROLE)) for item in suggestion_items(panel)}


def press(qtbot, key, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(QApplication.focusWidget(), key, modifiers)


def test_after_a_restart_the_panel_opens_on_a_saved_set_and_lists_its_stored_suggestions(window, qtbot, open_window):
    run_panel(window, qtbot, "red, green, blue")  # the set "colours"
    panel = window.tag_panel
    panel.set_box.setCurrentIndex(panel.set_box.findText("New label set…"))
    panel.name_field.setText("shapes")
    panel.labels_field.setText("round, square")
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel._progress is None and getattr(panel.current_set, "name", None) == "shapes"
                    and panel.run_button.isEnabled(), timeout=30000)
    colours = stored_suggestions(["red", "green", "blue"])
    shapes = stored_suggestions(["round", "square"])
    assert colours and shapes
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=60000)

    again = open_window()
    wait_model(qtbot, again)
    wait_results(qtbot, again, "", PHOTOS)
    again.grid.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is again.grid)
    press(qtbot, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)  # Tag with labels
    panel = again.tag_panel
    assert panel.isVisible()
    qtbot.waitUntil(lambda: panel.set_box.currentText() == "shapes", timeout=20000)  # the newest saved set
    qtbot.waitUntil(lambda: listed(panel) == shapes, timeout=20000)
    panel.set_box.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is panel.set_box)
    press(qtbot, Qt.Key.Key_Up)  # "colours" comes before "shapes"
    assert panel.set_box.currentText() == "colours"
    qtbot.waitUntil(lambda: listed(panel) == colours, timeout=20000)


def test_after_a_model_switch_the_panel_no_longer_lists_the_old_models_suggestions(window, qtbot, tmp_path):
    from test_export import SMALL_VIT, random_model

    from clipdesk.model.onnx_export import export_package
    from clipdesk.runtime.package_import import import_package
    from clipdesk.runtime.registry import set_default_model

    panel = run_panel(window, qtbot, "red, green, blue")
    assert listed(panel) == stored_suggestions(["red", "green", "blue"]) != set()
    export_package(random_model(SMALL_VIT, seed=7), tmp_path / "other", name="tiny-other", log=lambda _: None)
    import_package(tmp_path / "other")
    set_default_model("tiny-other")
    window.service.load_model()  # what Settings → Use as default does
    qtbot.waitUntil(lambda: window.service.model_state.name == "tiny-other" and
                    window.service.model_state.searching_with is None, timeout=60000)
    qtbot.waitUntil(lambda: listed(panel) == set(), timeout=20000)
    assert f"came from {MODEL_NAME}" in panel.status.text() and "tiny-other" in panel.status.text()
