"""The `clipdesk` command line.

Run-side commands never import torch: each command module imports what it needs inside its
handlers, so `clipdesk embed` or `search` start fast and work in an install without the train extra.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sqlite3
import sys
from collections.abc import Sequence

from clipdesk import __version__
from clipdesk.errors import ClipdeskError, send_warnings_to

# Command groups in help order; each module in clipdesk/commands/ has register(subparsers).
COMMAND_MODULES = ["gui", "info", "embed", "model", "train", "index", "search", "duplicates", "classify", "labels", "tag",
                   "export", "data", "repair"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipdesk", description="Find any photo by typing what is in it.")
    parser.add_argument("--version", action="version", version=f"clipdesk {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"clipdesk.commands.{name}").register(commands)
    return parser


def _warn(message: str) -> None:
    print(f"clipdesk: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    send_warnings_to(_warn)  # a damaged library is said on every command that opens it
    if not hasattr(args, "handler"):  # `clipdesk` alone opens the app
        from clipdesk.commands.gui import cmd_gui

        args.handler = cmd_gui
    try:
        return args.handler(args)
    except ClipdeskError as exc:
        print(f"clipdesk: error: {exc}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:  # what a damaged library gives wherever it is read
        print(f"clipdesk: error: the library database could not be read ({exc}); `clipdesk repair` backs it up "
              "and repairs it, keeping your tags", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("clipdesk: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `clipdesk errors | head`: the reader left; nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit flush
        return 0


if __name__ == "__main__":
    sys.exit(main())
