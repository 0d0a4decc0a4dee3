"""Entry point of the frozen app: `clipdesk` (and, on Windows and macOS, the windowed `clipdesk-gui`).

With no command it opens the desktop window, like `clipdesk` from a Python install; with one it runs
that command. The GUI runs `model import` through this same executable (sys.executable).
"""

import os
import sys


def main() -> int:
    # A windowed executable (Windows, macOS .app) started without a console or pipes has no stdout or
    # stderr: printing a command's result or an error must not crash it.
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))
    if os.environ.get("CLIPDESK_EXIT_AFTER_SHOW"):
        import startup_probe

        startup_probe.install()
    from clipdesk.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
