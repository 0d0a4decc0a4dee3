"""The status bar: notes and errors on the left, indexing progress with photos/s and Cancel, and the
current model with where it runs (CPU or CUDA) on the right."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QToolButton

from clipdesk.ui.icons import icon
from clipdesk.ui.library_service import ModelState

NOTE_MS = 8000
ERROR_MS = 15000


class StatusBar(QStatusBar):
    cancelRequested = Signal()
    modelClicked = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSizeGripEnabled(False)
        self.note_label = QLabel(self)
        self.note_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.stage_label = QLabel(self)
        self.progress = QProgressBar(self)
        self.progress.setFixedWidth(180)
        self.progress.setTextVisible(False)
        self.rate_label = QLabel(self)
        self.rate_label.setMinimumWidth(150)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop indexing; what is indexed so far is kept, and the next run goes on "
                                      "from there")
        self.cancel_button.clicked.connect(self._cancel)
        self.model_button = QToolButton(self)
        self.model_button.setAutoRaise(True)
        self.model_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.model_button.setToolTip("The model used for indexing and search; click to manage models")
        self.model_button.clicked.connect(self.modelClicked.emit)
        self.addWidget(self.note_label, 1)
        for widget in (self.stage_label, self.progress, self.rate_label, self.cancel_button):
            self.addPermanentWidget(widget)
        self.addPermanentWidget(self.model_button)
        self._clear_timer = QTimer(self)
        self._clear_timer.setSingleShot(True)
        self._clear_timer.timeout.connect(lambda: self.note_label.clear())
        self.show_indexing(False)
        self.set_model(ModelState())

    # --- notes ---

    def note(self, text: str, timeout_ms: int = NOTE_MS) -> None:
        self.note_label.setStyleSheet("")
        self.note_label.setText(text)
        self.note_label.setToolTip(text)
        if timeout_ms:
            self._clear_timer.start(timeout_ms)
        else:
            self._clear_timer.stop()

    def error(self, text: str) -> None:
        self.note(text, ERROR_MS)
        self.note_label.setStyleSheet("color: #d64545;")

    # --- indexing ---

    def show_indexing(self, visible: bool) -> None:
        for widget in (self.stage_label, self.progress, self.rate_label, self.cancel_button):
            widget.setVisible(visible)
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")

    def index_progress(self, stage: str, done: int, total: int, rate: float) -> None:
        if self.progress.isHidden():
            self.show_indexing(True)
        if total < 0:  # scanning: the count is not known yet
            self.progress.setRange(0, 0)
            self.stage_label.setText("Looking for photos…")
            self.rate_label.setText(f"{done:,} found")
            return
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.stage_label.setText("Indexing")
        rate_text = f" · {rate:.1f} photos/s" if rate > 0 else ""
        self.rate_label.setText(f"{done:,} / {total:,}{rate_text}")

    def _cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Stopping…")
        self.cancelRequested.emit()

    # --- model ---

    def set_model(self, state: ModelState) -> None:
        if state.name:
            where = state.provider or "…"
            self.model_button.setIcon(icon("model"))
            self.model_button.setText(f"{state.name} · {where}")
        else:
            self.model_button.setIcon(icon("warning"))
            self.model_button.setText("No model")
