"""One definition of "photos in the library": the sidebar, the header and `clipdesk info` agree, and an
unreadable file is a problem, not a photo."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from test_ui_support import (app, bundled_dir, installed_model, make_photos, open_window,  # noqa: F401
                             wait_model, wait_results)

from clipdesk.cli import main as run_cli
from clipdesk.ui.sidebar import ALL, COUNT_ROLE, FOLDER, PROBLEMS

READABLE = 6


def test_sidebar_header_and_info_count_the_same_photos_and_the_unreadable_file_as_a_problem(
        tmp_path, installed_model, open_window, qtbot, capsys):
    folder = tmp_path / "photos"
    make_photos(folder, READABLE)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    window = open_window()
    wait_model(qtbot, window)
    finished = []
    window.service.indexFinished.connect(finished.append)
    window.service.indexFailed.connect(finished.append)
    window.add_folders([str(folder)])
    qtbot.waitUntil(lambda: len(finished) == 1 and bool(window.sidebar_data and window.sidebar_data.folders),
                    timeout=60000)
    window.grid.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.grid)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_F5)  # refresh, as the user did
    qtbot.waitUntil(lambda: len(finished) == 2 and not window.service.indexing, timeout=60000)
    results = wait_results(qtbot, window, "")
    qtbot.waitUntil(lambda: window.sidebar_data is not None and window.sidebar_data.problems == 1, timeout=20000)

    view = window.sidebar.view
    assert view.find(ALL).data(COUNT_ROLE) == READABLE
    assert view.find(FOLDER, str(folder)).data(COUNT_ROLE) == READABLE
    assert view.find(PROBLEMS).data(COUNT_ROLE) == 1
    assert len(results) == READABLE and window.view_subtitle.text() == f"{READABLE} photos"
    capsys.readouterr()
    assert run_cli(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["photos"], info["problems"]) == (READABLE, 1)
