"""The sample library is never searched together with the user's photos without saying so: the command line
and the window both keep it apart once the library holds photos of the user's, say so, and let the user
include it or remove it in one click."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt
from test_ui_support import (MODEL_NAME, app, bundled_dir, installed_model, make_photos, open_window,  # noqa: F401
                             wait_indexed, wait_model, wait_results)

from clipdesk.cli import main
from clipdesk.library.sample_library import sample_library_path


def under(path: str, folder) -> bool:
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def search(capsys, *args) -> tuple[list[str], str]:
    capsys.readouterr()
    assert main(["search", "--json", "-k", "200", *args]) == 0
    out, err = capsys.readouterr()
    return [row["path"] for row in json.loads(out)], err


def test_search_keeps_the_sample_library_apart_and_says_so(tmp_path, capsys):
    sample = sample_library_path()
    photos = make_photos(tmp_path / "mine", 6)
    assert main(["index", str(sample)]) == 0
    alone, err = search(capsys, "banana")
    assert any(under(path, sample) for path in alone) and "sample library" not in err  # nothing else to keep apart

    assert main(["index", str(tmp_path / "mine")]) == 0
    mine, err = search(capsys, "banana")
    assert sorted(mine) == sorted(str(p) for p in photos)  # the user's photos only, ranked
    assert "the sample library (emoji and icons) is kept out of these results" in err
    both, err = search(capsys, "banana", "--with-sample")
    assert Path(both[0]).name == "banana (Fluent Emoji).png" and "these results include the sample library" in err
    assert sum(under(path, sample) for path in both) == len(list(sample.glob("*.png")))
    # A query that names the folder is taken as written.
    named, err = search(capsys, f"folder:{sample}")
    assert named and all(under(path, sample) for path in named) and "sample library" not in err


def test_the_window_offers_to_remove_the_sample_once_photos_are_added(tmp_path, installed_model, open_window,
                                                                     qtbot):
    sample = sample_library_path()
    window = open_window()
    wait_model(qtbot, window)
    qtbot.mouseClick(window.welcome.sample_button, Qt.MouseButton.LeftButton)
    count = len(list(sample.glob("*.png")))
    wait_indexed(qtbot, window, count)
    wait_results(qtbot, window, "", count)
    assert window.sample_notice.isHidden()  # only the sample: nothing is mixed

    photos = make_photos(tmp_path / "mine", 5)
    window.add_folders([str(tmp_path / "mine")])
    qtbot.waitUntil(lambda: sorted(window.results.paths) == sorted(map(str, photos))
                    and not window.service.indexing, timeout=30000)
    notice = window.sample_notice
    assert notice.isVisible() and "kept out of these results" in notice.text.text()
    assert window.view_subtitle.text().startswith("5 ")

    qtbot.mouseClick(notice.toggle_button, Qt.MouseButton.LeftButton)  # Show it too
    qtbot.waitUntil(lambda: len(window.results) == count + len(photos), timeout=20000)
    assert "include the sample library" in notice.text.text() and notice.toggle_button.text() == "Keep it apart"
    qtbot.mouseClick(notice.toggle_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.results) == len(photos), timeout=20000)

    qtbot.mouseClick(notice.remove_button, Qt.MouseButton.LeftButton)  # one click, undoable
    qtbot.waitUntil(lambda: window.sidebar_data is not None and
                    [folder.path for folder, _ in window.sidebar_data.folders] == [str(tmp_path / "mine")],
                    timeout=20000)
    qtbot.waitUntil(lambda: notice.isHidden(), timeout=20000)
    assert sorted(window.results.paths) == sorted(map(str, photos))
