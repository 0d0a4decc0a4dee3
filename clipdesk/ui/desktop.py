"""Handing photos to the rest of the desktop: open with the default app, show in the file manager, play a
video from a moment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable

from PySide6.QtCore import QProcess, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication

from clipdesk.runtime.video_frames import clock
from clipdesk.ui.workers import Lane

MAX_OPEN = 20  # opening hundreds of viewers at once helps nobody


NO_OPENER = "no application is set up to open them on this system (on Linux: xdg-open and a desktop's defaults)"


def open_paths(paths: list[str]) -> int:
    """Open photos (the first MAX_OPEN) in their default applications; returns how many opened."""
    return sum(bool(QDesktopServices.openUrl(QUrl.fromLocalFile(path))) for path in paths[:MAX_OPEN])


def _ask_file_manager(uri: str) -> bool:
    """The freedesktop FileManager1 call that opens the folder with the file selected (Nautilus, Dolphin,
    Nemo, Thunar...). Runs on a worker: without a session bus dbus-send can wait for seconds."""
    command = ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.FileManager1",
               "--type=method_call", "/org/freedesktop/FileManager1", "org.freedesktop.FileManager1.ShowItems",
               f"array:string:{uri}", "string:"]
    try:
        return subprocess.run(command, capture_output=True, timeout=3).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _open_folder(path: str, failed: Callable[[str], None] | None) -> None:
    if not QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(path))) and failed is not None:
        failed(f"Could not show {os.path.basename(path)} in its folder: no file manager is set up to open folders "
               "on this system")


def show_in_folder(path: str, failed: Callable[[str], None] | None = None) -> None:
    """Reveal the file in the file manager, selected where the platform allows it, else open its folder;
    `failed` gets a one-line message when nothing could."""
    if sys.platform == "darwin" and QProcess.startDetached("open", ["-R", path])[0]:
        return
    if os.name == "nt" and QProcess.startDetached("explorer", ["/select,", os.path.normpath(path)])[0]:
        return
    if sys.platform.startswith("linux") and shutil.which("dbus-send") and os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        uri = QUrl.fromLocalFile(path).toString(QUrl.ComponentFormattingOption.FullyEncoded)
        lane = QGuiApplication.instance().findChild(Lane, "clipdesk-desktop") or \
            Lane(1, "clipdesk-desktop", QGuiApplication.instance())
        lane.submit(_ask_file_manager, uri, on_done=lambda shown: None if shown else _open_folder(path, failed))
        return
    _open_folder(path, failed)


# Players that start at a moment when asked on their command line, in order of preference. A system's
# default opener (xdg-open, open, start) cannot be told where to start.
PLAYERS = (("mpv", "--start={seconds}"), ("vlc", "--start-time={seconds}"), ("celluloid", "--mpv-start={seconds}"))
_VLC_ELSEWHERE = ("/Applications/VLC.app/Contents/MacOS/VLC", r"C:\Program Files\VideoLAN\VLC\vlc.exe")


def _player() -> tuple[str, str] | None:
    for name, option in PLAYERS:
        found = shutil.which(name)
        if found:
            return found, option
    for path in _VLC_ELSEWHERE:
        if os.path.isfile(path):
            return path, "--start-time={seconds}"
    return None


def play_video(path: str, moment: float | None) -> str | None:
    """Play a video from `moment` (seconds) in a player that can start there, else from the start in the
    default app. Returns a one-line note when it could not start at the moment, or could not play at all."""
    player = _player() if moment else None
    if player is not None:
        program, option = player
        if QProcess.startDetached(program, [option.format(seconds=f"{moment:.2f}"), path])[0]:
            return None
    if not QDesktopServices.openUrl(QUrl.fromLocalFile(path)):
        return f"Could not play {os.path.basename(path)}: {NO_OPENER}"
    if moment:
        return ("Playing from the start: no player that can start at a moment (mpv or VLC) was found; "
                "the match is at " + clock(moment))
    return None
