"""The search field: results as you type (debounced), clickable example queries, and image drops.

Typing restarts a short timer; the query runs when the typing pauses, so a fast typist causes one
search, not one per key. Enter runs it at once. Dropping a photo file on the field turns it into an
image query (`like:"PATH"`), which the field shows so it can be edited or mixed with words.

Under the field, example queries run when clicked; those that do not fit the width are left out
(never cut), and the ? at the end (or F1 in the field) opens the query help (query_help.py).
"""

from __future__ import annotations

import os

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from clipdesk.search.query import IMAGE_EXTENSIONS
from clipdesk.ui.icons import icon
from clipdesk.ui.library_service import like_query
from clipdesk.ui.query_help import QueryHelp

DEBOUNCE_MS = 250

# Example queries under the field, in the order they are dropped from the end when the window is narrow.
# A tag example is added with one of the library's own tags (an unknown tag would be an error).
HINTS = ["dog on a beach", '"2:red car" - people', "after:2020"]


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
        self.setToolTip("How to write a query: F1, or the ? under the field")
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


class HintRow(QWidget):
    """"Try" and example queries as link-like buttons, then the query-help button. Examples that do not
    fit are hidden from the end, so the row never forces the window wider than "Try ?"."""
    hintClicked = Signal(str)
    helpClicked = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.lead = QLabel("Try", self)
        self.lead.setObjectName("searchHint")
        self.help_button = QToolButton(self)
        self.help_button.setObjectName("hint")
        self.help_button.setText("?  How to search")
        self.help_button.setToolTip("The query language, with examples to click (F1 in the search field)")
        self.help_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.help_button.clicked.connect(self.helpClicked.emit)
        self.buttons: list[QToolButton] = []
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(2)
        self.set_hints(HINTS)

    def set_hints(self, hints: list[str]) -> None:
        if [b.text() for b in self.buttons] == hints:
            return
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget() not in (None, self.lead, self.help_button):
                item.widget().deleteLater()
        self.buttons = []
        self._layout.addWidget(self.lead)
        for hint in hints:
            button = QToolButton(self)
            button.setObjectName("hint")
            button.setText(hint)
            button.setToolTip(f"Search for {hint}")
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.clicked.connect(lambda _=False, query=hint: self.hintClicked.emit(query))
            self.buttons.append(button)
            self._layout.addWidget(button)
        self._layout.addStretch(1)
        self._layout.addWidget(self.help_button)
        self._fit()

    def minimumSizeHint(self) -> QSize:
        spacing = self._layout.spacing()
        return QSize(self.lead.sizeHint().width() + spacing + self.help_button.sizeHint().width(),
                     max(self.lead.sizeHint().height(), self.help_button.sizeHint().height()))

    def sizeHint(self) -> QSize:
        spacing = self._layout.spacing()
        width = self.minimumSizeHint().width() + sum(b.sizeHint().width() + spacing for b in self.buttons)
        return QSize(width, self.minimumSizeHint().height())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        spacing = self._layout.spacing()
        room = self.width() - self.minimumSizeHint().width() - spacing
        for button in self.buttons:
            room -= button.sizeHint().width() + spacing
            button.setVisible(room >= 0)
        self.lead.setVisible(any(b.isVisibleTo(self) for b in self.buttons))


class SearchBar(QWidget):
    queryChanged = Signal(str)  # the query to run now ("" lists every photo)
    leaveDown = Signal()  # Down arrow: go to the results

    def __init__(self, parent=None):
        super().__init__(parent)
        self.field = SearchField(self)
        self.hint = HintRow(self)
        self.hint.hintClicked.connect(self.set_query)
        self.hint.helpClicked.connect(self.show_help)
        self.query_help = QueryHelp(self)
        self.query_help.exampleChosen.connect(self.set_query)
        self.error = QLabel(self)
        self.error.setObjectName("searchError")
        self.error.setWordWrap(False)
        self.error.hide()
        hints = QHBoxLayout()
        hints.setContentsMargins(4, 0, 0, 0)
        hints.addWidget(self.hint, 1)
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

    def set_tag_example(self, tag: str | None) -> None:
        """Offer `tag:NAME` among the examples, with one of the library's tags (none: no tag example)."""
        example = [f'tag:"{tag}"' if " " in tag else f"tag:{tag}"] if tag and '"' not in tag else []
        self.hint.set_hints(HINTS[:2] + example + HINTS[2:])

    def show_help(self) -> None:
        self.query_help.show_below(self.field)

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
        if event.key() == Qt.Key.Key_F1:
            self.show_help()
            return
        if event.key() == Qt.Key.Key_Down:
            self.leaveDown.emit()
            return
        if event.matches(QKeySequence.StandardKey.Cancel) and self.field.text():
            self.field.clear()
            return
        super().keyPressEvent(event)
