"""`clipdesk gui`: the desktop app (also what `clipdesk` alone opens)."""

from __future__ import annotations

from clipdesk.errors import ClipdeskError


def cmd_gui(args) -> int:
    try:
        from clipdesk.ui.app import run_app
    except ImportError:
        raise ClipdeskError(
            "the desktop window is not part of this build yet; use the commands in `clipdesk --help`"
        ) from None
    return run_app()


def register(commands) -> None:
    gui = commands.add_parser("gui", help="open the desktop app (the default with no command)")
    gui.set_defaults(handler=cmd_gui)
