"""Progress reporting for long jobs: a callback protocol for the core, a terminal bar for the CLI.

Core code (indexer, trainer, importer) takes an optional `progress: Progress` and calls
`progress.update(done, total, **facts)`; it checks `progress.cancelled` between units of work. The CLI
passes a `TerminalBar`, the GUI its own subclass that emits Qt signals.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    """Silent by default; subclasses show it. `cancel()` is safe to call from any thread."""

    def __init__(self) -> None:
        self._cancel = threading.Event()

    def update(self, done: int, total: int | None, **facts) -> None:
        pass

    def finish(self, message: str = "") -> None:
        pass

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()


def format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class TerminalBar(Progress):
    """`label [######    ] 512/1000 85.2 files/s ETA 00:06 facts`, redrawn at most 10 times a second,
    only when the stream is a terminal (so logs and pipes stay clean)."""

    def __init__(self, label: str, unit: str = "items", stream: TextIO | None = None, width: int = 28,
                 force: bool = False):
        super().__init__()
        self.label, self.unit, self.width = label, unit, width
        self.stream = stream or sys.stderr
        self.enabled = force or self.stream.isatty()
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._drawn = False
        self._first: int | None = None

    def line(self, done: int, total: int | None, **facts) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        if self._first is None:
            self._first = done  # a resumed job: its speed counts only what this run did
        rate = (done - self._first) / elapsed
        extra = " ".join(f"{key}={value}" for key, value in facts.items())
        if self.unit == "bytes":  # downloads: megabytes
            amount, speed = f"{done / 1e6:,.1f}" + (f"/{total / 1e6:,.1f}" if total else "") + " MB", f"{rate / 1e6:.1f} MB/s"
        else:
            amount, speed = f"{done}" + (f"/{total}" if total else f" {self.unit}"), f"{rate:.1f} {self.unit}/s"
        if total:
            filled = int(self.width * min(done, total) / total)
            bar = "#" * filled + " " * (self.width - filled)
            eta = format_duration((total - done) / rate) if rate > 0 else "--:--"
            text = f"{self.label} [{bar}] {amount} {speed} ETA {eta}"
        else:
            text = f"{self.label} {amount} {speed}"
        return f"{text} {extra}".rstrip()

    def update(self, done: int, total: int | None, **facts) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last_draw < 0.1 and not (total and done >= total):
            return
        self._last_draw = now
        self.stream.write("\r\x1b[2K" + self.line(done, total, **facts))
        self.stream.flush()
        self._drawn = True

    def finish(self, message: str = "") -> None:
        if self._drawn:
            self.stream.write("\r\x1b[2K")
        if message:
            self.stream.write(message + "\n")
        self.stream.flush()
