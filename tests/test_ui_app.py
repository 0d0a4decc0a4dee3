"""Starting the app: `clipdesk` opens the window without torch; a PySide6 build known to crash is refused."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from clipdesk.errors import ClipdeskError

# `clipdesk` with no command, in a fresh interpreter: the window opens, stays up while the app warms up
# (imports for indexing and search, the tokenizer), is closed, and the exit code and modules are reported.
APP_SCRIPT = """
import sys
from PySide6.QtCore import QTimer
import clipdesk.ui.app as app_module
from clipdesk.cli import main

make_window = app_module.create_main_window
def create_main_window():
    window = make_window()
    QTimer.singleShot(2500, window.close)
    return window
app_module.create_main_window = create_main_window
code = main([])
heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "onnx", "onnxscript", "transformers"))
print("EXIT", code, "HEAVY", heavy, "UI", sorted(name for name in sys.modules if name.startswith("clipdesk.ui.")))
"""


def test_clipdesk_opens_the_window_without_torch(clipdesk_home):
    env = {**os.environ, "CLIPDESK_HOME": str(clipdesk_home), "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-c", APP_SCRIPT], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "EXIT 0 HEAVY []" in result.stdout, result.stdout + result.stderr
    assert "clipdesk.ui.main_window" in result.stdout and "clipdesk.ui.tagging_panel" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_pyside_build_known_to_crash_is_refused_with_a_message(monkeypatch, capsys):
    import PySide6

    from clipdesk.cli import main
    from clipdesk.ui.app import check_qt_binding

    check_qt_binding()  # the installed one is fine
    monkeypatch.setattr(PySide6, "__version_info__", (6, 12, 0, "", ""))
    # Both Pythons, whichever runs the tests: the version check is given each in turn.
    with monkeypatch.context() as patch:
        patch.setattr(sys, "version_info", (3, 12, 0, "final", 0))
        check_qt_binding()  # None, True and False are immortal there: 6.12.0 is fine
    with monkeypatch.context() as patch:
        patch.setattr(sys, "version_info", (3, 11, 9, "final", 0))
        with pytest.raises(ClipdeskError, match="PySide6-Essentials"):
            check_qt_binding()
        assert main(["gui"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("clipdesk: error: PySide6 6.12.0 crashes") and error.count("\n") == 1


def test_lanes_hand_results_and_one_line_errors_to_the_ui_thread(qapp, qtbot):
    import threading

    from clipdesk.ui.workers import Lane

    lane = Lane(1, "test-lane")
    ui_thread = threading.current_thread()
    seen = []

    def done(value):
        seen.append(("done", value, threading.current_thread() is ui_thread))

    def failed(message):
        seen.append(("failed", message, threading.current_thread() is ui_thread))

    def broken():
        raise ValueError("bad value\nwith a second line")

    lane.submit(lambda: threading.current_thread().name, on_done=done)
    lane.submit(broken, on_error=failed)
    lane.submit(lambda: (_ for _ in ()).throw(ClipdeskError("photo.jpg: cannot read it")), on_error=failed)
    qtbot.waitUntil(lambda: len(seen) == 3, timeout=5000)
    assert seen[0][0] == "done" and seen[0][1].startswith("test-lane") and seen[0][2]
    assert seen[1] == ("failed", "ValueError: bad value with a second line", True)
    assert seen[2] == ("failed", "photo.jpg: cannot read it", True)
    assert lane.shutdown(5)
