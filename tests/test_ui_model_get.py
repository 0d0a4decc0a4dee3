"""Getting a model in the app: Settings → Models → Get a model…, the welcome page's and the emoji banner's
"Get a photo model (606 MB)". Downloads come from the local stand-in hub (tests/hub_standin.py), which serves
a tiny random-weight model in rclip's layout; nothing touches the network."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from test_model_get import hub, rclip_files, rclip_model  # noqa: F401 - the stand-in hub fixtures
from test_model_get import RCLIP_DIR, RCLIP_REPO, catalog_entry, write_catalog
from test_model_get_weights import openclip_hub  # noqa: F401 - a stand-in hub with an OpenCLIP repository
from test_ui_support import app, bundled_dir, make_photos, open_window, wait_indexed, wait_model  # noqa: F401

from clipdesk import paths
from clipdesk.runtime.registry import default_model_name, model_entries
from clipdesk.library.sample_library import sample_library_path

SHIPPED_CATALOG = paths.resources_dir() / "catalog.json"
RCLIP_FILES = {"image": f"{RCLIP_DIR}/visual.onnx", "text": f"{RCLIP_DIR}/textual.onnx"}


def shipped_recommended() -> dict:
    models = json.loads(SHIPPED_CATALOG.read_text(encoding="utf-8"))["models"]
    return next(model for model in models if model.get("recommended"))


@pytest.fixture
def catalog(tmp_path, monkeypatch):
    """A catalog file with the stand-in entries, added to the shipped catalog through CLIPDESK_CATALOG."""
    path = write_catalog(tmp_path, catalog_entry("tiny-rclip", RCLIP_REPO, "rclip", RCLIP_FILES,
                                                 licence_files=["LICENSE"]),
                         catalog_entry("no-repo", "tester/nothing-here", "rclip", RCLIP_FILES))
    monkeypatch.setenv("CLIPDESK_CATALOG", str(path))
    return path


@pytest.fixture
def get_dialog(app, qtbot, catalog):  # noqa: F811
    """The Get a model dialog on its own (the catalog with the stand-in entries), shut down afterwards."""
    from clipdesk.ui.get_model_dialog import GetModelDialog

    dialogs = []

    def factory():
        dialog = GetModelDialog()
        qtbot.addWidget(dialog)
        dialog.show()
        dialogs.append(dialog)
        return dialog

    yield factory
    for dialog in dialogs:
        dialog.shutdown()


def click_entry(qtbot, dialog, name: str) -> None:
    """Click the catalog row of `name`, as a user does."""
    table = dialog.table
    item = next(table.topLevelItem(i) for i in range(table.topLevelItemCount())
                if table.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole) == name)
    table.scrollToItem(item)
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=table.visualItemRect(item).center())
    assert dialog.selected_entry().name == name


def click(qtbot, button) -> None:
    assert button.isVisible() and button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_settings_gets_a_model_after_its_licence_and_the_window_switches_to_it(hub, catalog, bundled_dir,
                                                                               open_window, qtbot):
    window = open_window()
    wait_model(qtbot, window, None)
    settings = window.settings_dialog()
    settings.show()
    models = settings.models
    click(qtbot, models.get_button)
    dialog = models.get_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.default_check.isChecked()
    click_entry(qtbot, dialog, "tiny-rclip")
    row = dialog.table.currentItem()
    assert row.text(1) == "1 MB" and row.text(2) == "MIT" and row.text(3) == "no ImageNet figure"
    assert "none: random weights" in row.toolTip(3)
    qtbot.waitUntil(lambda: row.text(4) in ("CPU", "CUDA"), timeout=10000)

    click(qtbot, dialog.get_button)
    qtbot.waitUntil(lambda: dialog.accept_button.isVisible(), timeout=15000)
    assert not hub.requests("cdn")  # only the licence (a small file, from the hub origin) so far
    assert "Licence: MIT" in dialog.licence_title.text()
    assert "MIT License" in dialog.licence_text.toPlainText() and dialog.licence_text.isReadOnly()
    click(qtbot, dialog.accept_button)
    qtbot.waitUntil(lambda: "Installed tiny-rclip" in dialog.status_text(), timeout=30000)

    installed = model_entries()
    assert "tiny-rclip" in installed and not installed["tiny-rclip"].bundled
    assert default_model_name() == "tiny-rclip"
    assert "default" in dialog.status_text()
    wait_model(qtbot, window, "tiny-rclip")  # the window loaded the new default
    qtbot.waitUntil(lambda: any(models.table.topLevelItem(i).text(0) == "tiny-rclip   (default)"
                                for i in range(models.table.topLevelItemCount())), timeout=15000)
    dialog.close()
    qtbot.waitUntil(lambda: models.get_dialog is None, timeout=5000)
    settings.close()
    models.shutdown()


def test_cancelling_a_download_registers_nothing_and_says_it_resumes(hub, get_dialog, qtbot):
    hub.bytes_per_second = 200_000  # the text graph (about 13 MB) would take a minute
    dialog = get_dialog()
    click_entry(qtbot, dialog, "tiny-rclip")
    click(qtbot, dialog.get_button)
    qtbot.waitUntil(lambda: dialog.accept_button.isVisible(), timeout=15000)
    click(qtbot, dialog.accept_button)
    qtbot.waitUntil(lambda: "left" in dialog.progress_label.text(), timeout=15000)
    text = dialog.progress_label.text()  # "0.5 / 13.6 MB · 0.2 MB/s · 01:05 left"
    assert " MB · " in text and "MB/s" in text and dialog.progress_bar.isVisible()
    assert dialog.progress_bar.value() < dialog.progress_bar.maximum()

    click(qtbot, dialog.cancel_button)
    qtbot.waitUntil(lambda: dialog.state == dialog.CHOOSE, timeout=15000)
    message = dialog.status_text()
    assert "cancelled" in message and "resumes" in message and "\n" not in message
    assert "tiny-rclip" not in model_entries()
    assert not (paths.models_dir() / "tiny-rclip").exists()
    assert list((paths.data_dir() / "downloads").rglob("*.part"))  # kept for the next try
    assert dialog.get_button.isEnabled() and not dialog.cancel_button.isVisible()


def test_a_missing_repository_shows_one_line_and_registers_nothing(hub, get_dialog, qtbot):
    dialog = get_dialog()
    click_entry(qtbot, dialog, "no-repo")
    click(qtbot, dialog.get_button)
    qtbot.waitUntil(lambda: dialog.state == dialog.CHOOSE and dialog.status_text() != ""
                    and "Asking" not in dialog.status_text(), timeout=15000)
    message = dialog.status_text()
    assert "has no repository 'tester/nothing-here'" in message
    assert "\n" not in message and "Traceback" not in message
    assert not dialog.licence_box.isVisible() and not dialog.accept_button.isVisible()
    assert [entry.name for entry in model_entries().values() if not entry.bundled] == []
    assert default_model_name() != "no-repo"


def test_welcome_offers_the_recommended_photo_model_with_its_size(bundled_dir, open_window, qtbot):
    recommended = shipped_recommended()
    window = open_window()
    qtbot.waitUntil(lambda: window.sidebar_data is not None and window._model_loaded_once, timeout=20000)
    assert window.pages.currentWidget() is window.welcome
    button = window.welcome.get_model_button
    assert f"Get a photo model ({recommended['download_mb']:,.0f} MB)" in button.text()
    assert button.isVisible()
    click(qtbot, button)
    dialog = window.get_model_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.selected_entry().name == recommended["name"]
    assert f"({recommended['download_mb']:,.0f} MB)" in dialog.get_button.text()
    dialog.close()
    qtbot.waitUntil(lambda: window.get_model_dialog is None, timeout=5000)


def test_the_emoji_model_over_photos_carries_a_get_a_photo_model_banner(tmp_path, open_window, qtbot):
    # The real bundled model (clipdesk-emoji-tiny) is the default in a fresh home.
    recommended = shipped_recommended()
    make_photos(tmp_path / "photos", 3)
    window = open_window()
    wait_model(qtbot, window, "clipdesk-emoji-tiny")
    assert window.banner.isHidden()  # no photos yet
    sample = sample_library_path()
    before = 0
    if sample is not None:  # the sample library is emoji and icons: the emoji model is right for it
        before = len([path for path in sample.iterdir() if path.suffix.lower() in (".png", ".jpg", ".jpeg")])
        window.add_folders([str(sample)])
        wait_indexed(qtbot, window, before)
        assert before > 0 and window.banner.isHidden()
    window.add_folders([str(tmp_path / "photos")])
    wait_indexed(qtbot, window, before + 3)
    assert not window.banner.isHidden()
    assert window.banner.text.text() == "<b>clipdesk-emoji-tiny</b> knows emoji and icons, not photographs."
    assert window.banner.button.text() == f"Get a photo model ({recommended['download_mb']:,.0f} MB)"
    click(qtbot, window.banner.button)
    dialog = window.get_model_dialog
    assert dialog is not None and dialog.selected_entry().name == recommended["name"]
    dialog.close()
    qtbot.waitUntil(lambda: window.get_model_dialog is None, timeout=5000)


def test_any_hub_repository_typed_by_name_is_converted_and_installed(get_dialog, openclip_hub, qtbot):
    """OWNER/NAME typed into the dialog (keys to the focused field, Enter): the repository's licence is shown,
    then its weights are downloaded and converted; a name that is no repository says so in one line."""
    from test_ui_support import press

    dialog = get_dialog()
    dialog.repo_edit.setFocus()
    qtbot.waitUntil(dialog.repo_edit.hasFocus, timeout=5000)
    qtbot.keyClicks(dialog.repo_edit, "not a repo")
    press(qtbot, Qt.Key.Key_Return)
    assert "not a repository name" in dialog.status_text() and dialog.state == dialog.CHOOSE
    dialog.repo_edit.clear()
    qtbot.keyClicks(dialog.repo_edit, "tester/openclip-tiny")
    press(qtbot, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: dialog.accept_button.isVisible(), timeout=15000)
    assert "Licence: mit" in dialog.licence_title.text() and "MIT License" in dialog.licence_text.toPlainText()
    click(qtbot, dialog.accept_button)
    qtbot.waitUntil(lambda: "Installed openclip-tiny" in dialog.status_text(), timeout=60000)
    manifest = json.loads((model_entries()["openclip-tiny"].path / "manifest.json").read_text())
    assert manifest["architecture"]["activation"] == "gelu" and manifest["provenance"]["hub"]["layout"] == "openclip"
