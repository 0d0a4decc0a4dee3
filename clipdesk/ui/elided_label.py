"""A one-line label that elides its text to its width instead of being cut off, and never below a few
characters: the layout gives it at least `min_chars` characters (plus the ellipsis), so a name is never
elided to nothing. The full text is its tooltip while it is elided. text() is the text as set (as for
any label); shown_text() is what is drawn."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QLabel, QSizePolicy


class ElidedLabel(QLabel):

    def __init__(self, text: str = "", parent=None, mode: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle,
                 min_chars: int = 8):
        super().__init__(parent)
        self.mode, self.min_chars = mode, min_chars
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        self._full = text
        self.updateGeometry()
        self._elide()

    def text(self) -> str:  # the label's text, as set; shown_text() is what is drawn
        return self._full

    def shown_text(self) -> str:
        return super().text()

    def sizeHint(self) -> QSize:
        margins = self.contentsMargins()
        return QSize(self.fontMetrics().horizontalAdvance(self._full) + margins.left() + margins.right() + 2,
                     super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        margins = self.contentsMargins()
        shortest = self._full if len(self._full) <= self.min_chars + 1 else self._full[:self.min_chars] + "…"
        return QSize(self.fontMetrics().horizontalAdvance(shortest) + margins.left() + margins.right() + 2,
                     super().minimumSizeHint().height())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._elide()

    def changeEvent(self, event) -> None:  # a style sheet or theme can change the font
        super().changeEvent(event)
        if event.type() == event.Type.FontChange:
            self._elide()

    def _elide(self) -> None:
        # Until it is laid out its width means nothing: the whole text, elided once it is shown.
        width = self.contentsRect().width() if self.isVisible() else 1 << 20
        shown = self.fontMetrics().elidedText(self._full, self.mode, width)
        super().setText(shown)
        self.setToolTip(self._full if shown != self._full else "")
