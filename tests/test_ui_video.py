"""Videos in the app, with the bundled model: a query shows the video at the frame that matched, with its
moment and length on the tile, and the photo view plays it from there in a player that can start at a
moment."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from test_ui_support import app, bundled_dir, open_window, press, wait_focus_in, wait_indexed, wait_model  # noqa: F401

from clipdesk.ui.photo_grid import THUMBNAIL_ROLE, VIDEO_ROLE
from video_files import SECONDS_EACH, SIDE, SLIDES, read_videos_with, slide, slideshow

ROOT = Path(__file__).resolve().parents[1]
BANANA = SLIDES.index("banana (Fluent Emoji).png")


def closest_slide(image: QImage) -> int:
    image = image.convertToFormat(QImage.Format.Format_RGB888).scaled(SIDE, SIDE)
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(SIDE, image.bytesPerLine())[:, :SIDE * 3]
    pixels = pixels.reshape(SIDE, SIDE, 3).astype(np.float32)
    return int(np.argmin([np.abs(pixels - np.asarray(slide(name), np.float32)).mean() for name in SLIDES]))


def indexed_window(bundled_dir, open_window, qtbot, folder: Path, items: int):
    """A window on the bundled model with `folder` indexed (`items`: what the sidebar counts)."""
    name = (ROOT / "resources" / "models" / "DEFAULT").read_text().strip()
    (bundled_dir / name).symlink_to(ROOT / "resources" / "models" / name, target_is_directory=True)
    window = open_window()
    wait_model(qtbot, window, name)
    window.add_folders([str(folder)])
    wait_indexed(qtbot, window, items)
    return window


@pytest.fixture
def video_window(tmp_path, bundled_dir, open_window, qtbot):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "slides.mp4").write_bytes(slideshow(SLIDES))
    shutil.copy(ROOT / "resources" / "sample-library" / SLIDES[0], folder / "apple.png")
    return indexed_window(bundled_dir, open_window, qtbot, folder, 2), folder


def test_a_query_shows_the_matching_frame_and_plays_from_that_moment(video_window, qtbot, tmp_path, monkeypatch):
    window, folder = video_window
    window.search_bar.field.setFocus()
    wait_focus_in(qtbot, window)
    qtbot.keyClicks(window.search_bar.field, "banana")
    qtbot.waitUntil(lambda: window.results.query == "banana" and len(window.results) == 2, timeout=20000)
    assert window.view_subtitle.text() == "1 photo and 1 video, most similar first"
    model = window.grid_model
    assert model.path(0).endswith("slides.mp4")
    moment, duration = model.index(0).data(VIDEO_ROLE)
    start = BANANA * SECONDS_EACH
    assert start - 2 <= moment <= start + SECONDS_EACH + 2 and duration == pytest.approx(10, abs=0.25)
    assert model.index(1).data(VIDEO_ROLE) is None  # the apple is a photo
    assert f"best at 0:0{int(moment)}" in model.index(0).data(Qt.ItemDataRole.ToolTipRole)
    # The tile shows the frame that matched, not the video's poster.
    model.index(0).data(THUMBNAIL_ROLE)
    qtbot.waitUntil(lambda: model.index(0).data(THUMBNAIL_ROLE) is not None, timeout=20000)
    assert closest_slide(model.index(0).data(THUMBNAIL_ROLE).toImage()) == BANANA

    # A player that starts at a moment: the first on PATH is used (here one that writes down how it was run).
    bin_dir, record = tmp_path / "bin", tmp_path / "played.txt"
    bin_dir.mkdir()
    player = bin_dir / "mpv"
    player.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > '{record}'\n")
    player.chmod(player.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    window.grid.setFocus()
    wait_focus_in(qtbot, window)
    press(qtbot, Qt.Key.Key_Home)
    press(qtbot, Qt.Key.Key_Space)  # the photo view
    view = window.photo_view
    qtbot.waitUntil(view.isVisible)
    assert view.play_button.isVisible() and view.play_button.text() == f"▶ Play from 0:0{int(moment)}"
    qtbot.waitUntil(lambda: view.canvas.pixmap is not None and view.canvas.pixmap.width() >= SIDE, timeout=20000)
    assert closest_slide(view.canvas.pixmap.toImage()) == BANANA
    qtbot.waitUntil(lambda: any(view.facts.itemAt(i).widget().text() == "0:10" for i in range(view.facts.count())
                                if view.facts.itemAt(i).widget() is not None), timeout=10000)
    qtbot.mouseClick(view.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(record.exists, timeout=10000)
    qtbot.waitUntil(lambda: len(record.read_text().splitlines()) == 2, timeout=10000)
    assert record.read_text().splitlines() == [f"--start={moment:.2f}", str(folder / "slides.mp4")]
    assert not view.play_note.isVisible()
    press(qtbot, Qt.Key.Key_Right)  # the apple photo: nothing to play
    assert not view.play_button.isVisible()


def test_the_sidebar_lists_the_videos_and_shows_them_when_clicked(video_window, qtbot):
    from clipdesk.ui.sidebar import VIDEOS

    window, folder = video_window
    qtbot.waitUntil(lambda: window.sidebar_data is not None and window.sidebar_data.videos == 1, timeout=20000)
    view = window.sidebar.view
    entry = view.find(VIDEOS)
    assert entry.data(Qt.ItemDataRole.DisplayRole) == "Videos"
    rect = view.visualRect(entry)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: window.results.query == "is:video" and len(window.results) == 1, timeout=20000)
    assert window.grid_model.path(0).endswith("slides.mp4") and window.view_title.text() == "Videos"
    assert window.view_subtitle.text() == "1 video"
    assert window.sidebar_data.total == 2  # "All photos" counts the video too


def test_a_live_photo_is_one_item_whose_video_plays_from_the_photo_view(tmp_path, bundled_dir, open_window, qtbot,
                                                                       monkeypatch):
    folder = tmp_path / "phone"
    folder.mkdir()
    slide(SLIDES[BANANA]).save(folder / "IMG_0050.jpg", quality=90)
    (folder / "IMG_0050.mov").write_bytes(slideshow([SLIDES[BANANA]], container="mov"))
    window = indexed_window(bundled_dir, open_window, qtbot, folder, 1)  # two files, one item
    qtbot.waitUntil(lambda: window.results.query == "" and len(window.results) == 1, timeout=20000)
    assert window.grid_model.path(0).endswith("IMG_0050.jpg") and window.view_subtitle.text() == "1 photo"
    played = []
    monkeypatch.setattr("clipdesk.ui.desktop.play_video", lambda path, moment: played.append((path, moment)))
    window.grid.setFocus()
    wait_focus_in(qtbot, window)
    press(qtbot, Qt.Key.Key_Home)
    press(qtbot, Qt.Key.Key_Space)
    view = window.photo_view
    qtbot.waitUntil(lambda: view.play_button.isVisible(), timeout=20000)
    assert view.play_button.text() == "▶ Play the Live Photo"
    qtbot.mouseClick(view.play_button, Qt.MouseButton.LeftButton)
    assert played == [(str(folder / "IMG_0050.mov"), None)]


def test_the_app_says_how_many_videos_it_skipped_and_how_to_read_them(tmp_path, bundled_dir, open_window, qtbot,
                                                                     monkeypatch):
    """An install with neither PyAV nor an ffmpeg program (the app bundle on a computer without FFmpeg)."""
    read_videos_with(monkeypatch, None, str(tmp_path / "nowhere"))
    folder = tmp_path / "phone"
    folder.mkdir()
    (folder / "one.mp4").write_bytes(slideshow(SLIDES[:2]))
    (folder / "two.mov").write_bytes(slideshow(SLIDES[:2], container="mov"))
    slide(SLIDES[0]).save(folder / "apple.jpg")
    window = indexed_window(bundled_dir, open_window, qtbot, folder, 1)
    qtbot.waitUntil(lambda: "skipped" in window.status.note_label.text(), timeout=20000)
    assert window.status.note_label.text() == ("Indexed: 1 file, 1 newly indexed, "
                                               "2 videos skipped: install FFmpeg to index videos")


def test_settings_say_how_videos_are_read(app, qtbot, tmp_path, monkeypatch):
    import imageio_ffmpeg

    from clipdesk.ui.settings_dialog import SettingsDialog

    read_videos_with(monkeypatch, imageio_ffmpeg.get_ffmpeg_exe(), str(tmp_path / "nowhere"))
    dialog = SettingsDialog(tmp_path / "library.db")
    qtbot.addWidget(dialog)
    dialog.tabs.setCurrentWidget(dialog.library)
    expected = f"Videos are read with the ffmpeg program at {imageio_ffmpeg.get_ffmpeg_exe()}."
    assert dialog.library.videos.text() == expected
    dialog.models.shutdown()
