"""Running core work off the UI thread: jobs on worker threads, results and errors back on the UI thread.

A `Lane` is a small pool of Python threads (concurrent.futures) paired with a QObject living on the
UI thread: a job's result, or a one-line error message, is handed to its callback on the UI thread.
A lane with one thread runs its jobs in order, which keeps objects that are not thread-safe (a
`Searcher`) on one thread. The core's heavy work releases the GIL (ONNX Runtime, Pillow, hashlib,
SQLite), so Python threads run it in parallel with the UI.

How results cross threads: workers emit no signals and touch no QObject. They queue (callback, value) and wake
the UI thread with a queued `invokeMethod` of the lane's `_drain` slot, once per burst, so a flood
of results (thumbnails while scrolling) costs one event, not one per result.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QMetaObject, QObject, Qt, Signal, Slot

from clipdesk.errors import ClipdeskError
from clipdesk.progress import Progress

MAX_MESSAGE = 300


def one_line(error: BaseException) -> str:
    """A message for people: the core's errors are already one line; anything else gets its type named
    and is cut to one line (the traceback goes to stderr, never to a dialog)."""
    if isinstance(error, ClipdeskError):
        text = str(error)
    elif isinstance(error, MemoryError):
        text = "out of memory"
    else:
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 1] + "…"


def _lower_priority(nice: int) -> None:
    """Run this worker thread at a lower CPU priority (Linux: per thread, inherited by the threads it
    starts, such as the indexer's decoders), so that the UI thread wins a busy CPU."""
    if nice and hasattr(os, "setpriority") and sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        except OSError:
            pass


class Lane(QObject):
    """Worker threads whose results come back on the UI thread. Create it on the UI thread."""

    def __init__(self, threads: int, name: str, parent: QObject | None = None, nice: int = 0):
        super().__init__(parent)
        self.setObjectName(name)
        self._executor = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix=name,
                                                               initializer=_lower_priority, initargs=(nice,))
        self._futures: set[concurrent.futures.Future] = set()
        self._lock = threading.Lock()
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._drain_scheduled = False
        self._closed = False
        # Start the threads now: starting one waits for it to run, which on a busy machine took 60 ms of the
        # UI thread's time when the first job was submitted.
        started = threading.Barrier(threads + 1)
        for _ in range(threads):
            self._executor.submit(started.wait, 5)
        try:
            started.wait(5)
        except threading.BrokenBarrierError:
            pass  # a machine too busy to start threads in 5 s: they start when the jobs come

    def submit(self, function: Callable[..., Any], *args, on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[str], None] | None = None, **kwargs) -> concurrent.futures.Future:
        """Run function(*args, **kwargs) on a worker; then on_done(result) or on_error(message) on the
        UI thread. A callback that is a method of a QObject deleted meanwhile is skipped. After shutdown
        (the window closed while a late signal still asks for work) nothing runs: the future comes back
        cancelled."""
        with self._lock:
            if self._closed:
                future = concurrent.futures.Future()
                future.cancel()
                return future
            future = self._executor.submit(self._run, function, args, kwargs, on_done, on_error)
            self._futures.add(future)
        future.add_done_callback(self._forget)
        return future

    def _run(self, function, args, kwargs, on_done, on_error) -> None:
        try:
            result = function(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message; nothing may kill a worker
            if not isinstance(exc, ClipdeskError):
                traceback.print_exc(file=sys.stderr)
            if on_error is not None:
                self.post(on_error, one_line(exc))
        else:
            if on_done is not None:
                self.post(on_done, result)

    def post(self, callback: Callable[[Any], None], value: Any) -> None:
        """Call callback(value) on the UI thread, soon. Safe from any thread."""
        self._inbox.put((callback, value))
        with self._lock:
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        QMetaObject.invokeMethod(self, "_drain", Qt.ConnectionType.QueuedConnection)

    @Slot()
    def _drain(self) -> None:
        with self._lock:
            self._drain_scheduled = False  # a post from now on schedules another drain
        while True:
            try:
                callback, value = self._inbox.get_nowait()
            except queue.Empty:
                return
            self._deliver(callback, value)

    def _forget(self, future: concurrent.futures.Future) -> None:
        with self._lock:
            self._futures.discard(future)

    @staticmethod
    def _deliver(callback, value) -> None:
        owner = getattr(callback, "__self__", None)
        if isinstance(owner, QObject) and not shiboken6.isValid(owner):
            return
        callback(value)

    def clear(self) -> None:
        """Drop the jobs that have not started."""
        with self._lock:
            futures = list(self._futures)
        for future in futures:
            future.cancel()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the running and queued jobs; True when all are done."""
        with self._lock:
            futures = list(self._futures)
        _, pending = concurrent.futures.wait(futures, timeout_s)
        return not pending

    def shutdown(self, timeout_s: float | None = None) -> bool:
        with self._lock:
            self._closed = True
        self.clear()
        finished = self.wait(timeout_s)
        self._executor.shutdown(wait=finished, cancel_futures=True)
        return finished

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._futures)


class ProgressSignals(QObject):
    # stage ("scanning", "indexing", ...), done, total (-1 when unknown), items per second in this stage
    changed = Signal(str, int, int, float)


class SignalProgress(Progress):
    """The core's Progress callback, re-emitted as a Qt signal on the UI thread (through `lane`) at most
    `rate_hz` times a second.

    Throttled so that a fast indexer cannot flood the UI thread's event queue; the last update of a
    stage (done == total) always goes through.
    """

    def __init__(self, lane: Lane, rate_hz: float = 10.0):
        super().__init__()
        self.signals = ProgressSignals()
        self._lane = lane
        self._interval = 1.0 / rate_hz
        self._lock = threading.Lock()
        self._last_emit = 0.0
        self._stage: str | None = None
        self._stage_started = 0.0
        self._stage_first_done = 0

    def update(self, done: int, total: int | None, stage: str = "indexing", **facts) -> None:
        now = time.monotonic()
        with self._lock:
            if stage != self._stage:
                self._stage, self._stage_started, self._stage_first_done = stage, now, done
                self._last_emit = 0.0
            final = total is not None and done >= total
            if not final and now - self._last_emit < self._interval:
                return
            self._last_emit = now
            elapsed = now - self._stage_started
            rate = (done - self._stage_first_done) / elapsed if elapsed > 0.2 else 0.0
        self._lane.post(self._emit, (stage, int(done), -1 if total is None else int(total), float(rate)))

    def _emit(self, values: tuple) -> None:
        self.signals.changed.emit(*values)
