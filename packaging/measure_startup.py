#!/usr/bin/env python3
"""Start-to-window time of the built app: python3 packaging/measure_startup.py [dist/clipdesk/clipdesk] [-n 5]

Starts the frozen `clipdesk` N times with no Python environment, a fresh CLIPDESK_HOME (the first-run
welcome page) and CLIPDESK_EXIT_AFTER_SHOW=1, which makes it print when its main window has painted its
first frame and quit (packaging/startup_probe.py). The time counts from just before the process is
started until that line's timestamp. QT_QPA_PLATFORM defaults to offscreen; set DISPLAY and
--platform xcb to measure a real X11 window (under Xvfb, say). Also times `clipdesk info` (no Qt).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bare_environment(home: Path, platform: str | None) -> dict:
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
                   "CLIPDESK_HOME": str(home / "clipdesk")}
    for name in ("DISPLAY", "XAUTHORITY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "SYSTEMROOT", "TEMP", "TMP"):
        if name in os.environ:
            environment[name] = os.environ[name]
    if platform:
        environment["QT_QPA_PLATFORM"] = platform
    return environment


def window_seconds(executable: Path, platform: str | None, timeout: float = 60) -> float:
    """Seconds from starting the process until its main window was shown."""
    with tempfile.TemporaryDirectory() as folder:
        environment = {**bare_environment(Path(folder), platform), "CLIPDESK_EXIT_AFTER_SHOW": "1"}
        started = time.time()
        result = subprocess.run([str(executable)], env=environment, capture_output=True, text=True, timeout=timeout)
    found = re.search(r"window shown at ([0-9.]+)", result.stderr)
    if result.returncode != 0 or not found:
        raise RuntimeError(f"{executable} did not report its window (exit {result.returncode}):\n{result.stderr}")
    return float(found.group(1)) - started


def command_seconds(executable: Path, arguments: list[str]) -> float:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        subprocess.run([str(executable), *arguments], env=bare_environment(Path(folder), "offscreen"), check=True,
                       capture_output=True, timeout=60)
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("executable", nargs="?", type=Path, default=ROOT / "dist" / "clipdesk" / "clipdesk")
    parser.add_argument("-n", type=int, default=5, help="runs (default 5)")
    parser.add_argument("--platform", default="offscreen", help="QT_QPA_PLATFORM (default offscreen)")
    args = parser.parse_args()
    windows = [window_seconds(args.executable, args.platform) for _ in range(args.n)]
    infos = [command_seconds(args.executable, ["info"]) for _ in range(args.n)]
    print(f"start to window ({args.platform}): median {statistics.median(windows):.2f} s, "
          f"max {max(windows):.2f} s over {args.n} runs")
    print(f"`clipdesk info`: median {statistics.median(infos):.2f} s, max {max(infos):.2f} s over {args.n} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
