"""Start-up measurement for the frozen app: CLIPDESK_EXIT_AFTER_SHOW=1 clipdesk

When the main window has painted its first frame, prints one line to stderr and quits:

    clipdesk: window shown at EPOCH_SECONDS (N.NNN s after process start)

EPOCH_SECONDS is time.time(), for a caller that noted the time before starting the process (what
packaging/measure_startup.py and tests/test_dist.py do); the figure in brackets is read from /proc
where there is one. Only the entry script imports this module, and only when the variable is set.
"""

from __future__ import annotations

import sys
import time


def seconds_since_process_start() -> float | None:
    try:
        import os

        with open("/proc/self/stat") as handle:
            start_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def install() -> None:
    import clipdesk.ui.app as app_module
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication

    class FirstPaint(QObject):
        """Waits for the first paint of any widget after the main window is shown, lets that frame finish,
        then reports and quits."""

        def __init__(self, parent) -> None:
            super().__init__(parent)
            self.seen = False

        def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
            if not self.seen and event.type() == QEvent.Type.Paint:
                self.seen = True
                QTimer.singleShot(0, self.report)
            return False

        def report(self) -> None:
            shown = time.time()
            since = seconds_since_process_start()
            extra = f" ({since:.3f} s after process start)" if since is not None else ""
            print(f"clipdesk: window shown at {shown:.3f}{extra}", file=sys.stderr, flush=True)
            QApplication.instance().quit()

    create_main_window = app_module.create_main_window

    def create_and_watch():
        window = create_main_window()
        if window is not None:
            QApplication.instance().installEventFilter(FirstPaint(window))
        return window

    app_module.create_main_window = create_and_watch
