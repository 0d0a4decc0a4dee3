"""Starting the desktop app: `clipdesk`, `clipdesk gui` and `make run` call `run_app()`."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from PySide6.QtWidgets import QApplication

from clipdesk import __version__
from clipdesk.settings import load_settings
from clipdesk.ui.icons import app_icon
from clipdesk.ui.theme import Theme


# Python hands the GIL to a waiting thread after this long (5 ms by default). The UI thread competes with
# indexing, search and thumbnail threads for it; a shorter interval keeps its wait for each Python slot
# short, so the event loop stays smooth while the core works.
GIL_SWITCH_INTERVAL_S = 0.001


def create_app(argv: Sequence[str] | None = None) -> QApplication:
    """The QApplication with clipdesk's name, icon and theme (reuses one that exists, as tests do)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    app = QApplication.instance() or QApplication(list(argv if argv is not None else sys.argv))
    app.setApplicationName("clipdesk")
    app.setApplicationDisplayName("clipdesk")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("clipdesk")
    app.setDesktopFileName("clipdesk")
    app.setWindowIcon(app_icon())
    if app.findChild(Theme) is None:
        Theme(app, load_settings().get("theme", "system"))
    return app


def create_main_window():
    """The main window over the library in the settings' location; a broken database is reported in
    a message box rather than a traceback."""
    from clipdesk.errors import ClipdeskError
    from clipdesk.ui.main_window import MainWindow

    try:
        return MainWindow()
    except ClipdeskError as exc:
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.critical(None, "clipdesk cannot open its library", str(exc))
        return None


def check_qt_binding() -> None:
    """Refuse a PySide6 build known to crash the app, with what to install instead.

    PySide6 6.12.0 returns None, True and False from C++ calls without taking a reference; on Python
    before 3.12 (where those objects are not immortal) the interpreter aborts after a few hundred
    signals or setter calls ("Fatal Python error: bool_dealloc").
    """
    import PySide6

    from clipdesk.errors import ClipdeskError

    if tuple(PySide6.__version_info__[:3]) == (6, 12, 0) and sys.version_info < (3, 12):
        raise ClipdeskError("PySide6 6.12.0 crashes on Python 3.11 (reference-count bug); install 6.11: "
                            "pip install 'PySide6-Essentials>=6.7,<6.12'")


def run_app(argv: Sequence[str] | None = None) -> int:
    check_qt_binding()
    app = create_app(argv)
    window = create_main_window()
    if window is None:
        return 1
    window.show()
    return app.exec()
