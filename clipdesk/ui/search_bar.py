"""The search field: results as you type (debounced), a hint of the query language, and image drops.

Typing restarts a short timer; the query runs when the typing pauses, so a fast typist causes one
search, not one per key. Enter runs it at once. Dropping a photo file on the field turns it into an
image query (`like:"PATH"`), which the field shows so it can be edited or mixed with words.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from clipdesk.search.query import IMAGE_EXTENSIONS
from clipdesk.ui.icons import icon
from clipdesk.ui.library_service import like_query

DEBOUNCE_MS = 250

HINT = ('Try <b>dog on a beach</b> &nbsp;·&nbsp; <b>"2:red car" - people</b> &nbsp;·&nbsp; <b>tag:family</b>'
        ' &nbsp;·&nbsp; <b>after:2020</b> &nbsp;·&nbsp; or drop a photo here to find similar ones')

SYNTAX_HELP = """<b>Query language</b><br>
<code>kids on a beach</code> — words form one text term<br>
<code>"2:red car" + beach - people</code> — weights, adding and subtracting terms<br>
<code>like:"~/Pictures/dog.jpg" + snow</code> — a photo as a term (or drop one on the field)<br>
<code>tag:family &nbsp; -tag:work</code> — with / without a tag<br>
<code>folder:~/Pictures &nbsp; -folder:…</code> — in / not in a folder<br>
<code>after:2020 &nbsp; before:2021-03 &nbsp; date:2023-06 &nbsp; date:2019..2021</code> — when taken<br>
An empty query lists every photo."""


def dropped_image(mime) -> str | None:
    """The local image file a drag carries (the first, if several), or None."""
    if not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile():
            path = url.toLocalFile()
            if path.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(path):
                return path
    return None


class SearchField(QLineEdit):
    imageDropped = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("searchField")
        self.setPlaceholderText("Search photos by what is in them…   (Ctrl+F)")
        self.setClearButtonEnabled(True)
        self.search_action = QAction(icon("search"), "Search", self)
        self.addAction(self.search_action, QLineEdit.ActionPosition.LeadingPosition)
        self.setToolTip(SYNTAX_HELP)
        self.setAcceptDrops(True)

    def dragEnterEvent(self, event) -> None:
        if dropped_image(event.mimeData()):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if dropped_image(event.mimeData()):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:
        path = dropped_image(event.mimeData())
        if path:
            event.acceptProposedAction()
            self.imageDropped.emit(path)
        else:
            super().dropEvent(event)


class SearchBar(QWidget):
    queryChanged = Signal(str)  # the query to run now ("" lists every photo)
    leaveDown = Signal()  # Down arrow: go to the results

    def __init__(self, parent=None):
        super().__init__(parent)
        self.field = SearchField(self)
        self.hint = QLabel(HINT, self)
        self.hint.setObjectName("searchHint")
        self.hint.setTextFormat(Qt.TextFormat.RichText)
        self.error = QLabel(self)
        self.error.setObjectName("searchError")
        self.error.setWordWrap(False)
        self.error.hide()
        hints = QHBoxLayout()
        hints.setContentsMargins(4, 0, 0, 0)
        hints.addWidget(self.hint)
        hints.addWidget(self.error, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.field)
        layout.addLayout(hints)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.run_now)
        self.field.textEdited.connect(self._typed)
        self.field.returnPressed.connect(self.run_now)
        self.field.imageDropped.connect(lambda path: self.set_query(like_query(path)))
        # The clear button changes the text without textEdited.
        self.field.textChanged.connect(lambda text: self._typed(text) if not text else None)

    def text(self) -> str:
        return self.field.text()

    def set_query(self, text: str) -> None:
        """Show `text` as the query and run it now (tag clicks, Find similar, image drops)."""
        self.field.setText(text)
        self.run_now()

    def focus(self) -> None:
        self.field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.field.selectAll()

    def _typed(self, _text: str) -> None:
        self._timer.start()

    def run_now(self) -> None:
        self._timer.stop()
        text = self.field.text().strip()
        self.show_error(None)
        self.queryChanged.emit(text)

    def show_error(self, message: str | None) -> None:
        """A query that does not parse (or cannot run) says why under the field, in place of the hint."""
        self.error.setVisible(bool(message))
        self.hint.setVisible(not message)
        self.error.setText(message or "")
        self.error.setToolTip(message or "")

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Down:
            self.leaveDown.emit()
            return
        if event.matches(QKeySequence.StandardKey.Cancel) and self.field.text():
            self.field.clear()
            return
        super().keyPressEvent(event)
