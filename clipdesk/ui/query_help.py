"""The query-help popover: the search language in one small card, opened from the ? under the search field
or with F1 in it. Every example is a button that runs it. docs/search.md is the full reference; the
examples here are copied from its table (tests/test_ui_layout.py checks that they still are).
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QToolButton, QVBoxLayout, QWidget

# (example, what it means); the examples run when clicked.
EXAMPLES = [
    ("kids on a beach at sunset", "a run of plain words is one phrase"),
    ('"red car" beach', "two terms, added: a quoted phrase is a term of its own"),
    ('"2:red car" + beach - people', "weights: 2 × “red car” + “beach” − “people”"),
    ("0.5:sunset", "a weight (above 0, at most 100) before a term makes it count more or less"),
    ("beach -people on bikes", "a sign or weight starts a new term; the words after it join that term"),
    ("tag:family", "only photos with this tag (your confirmed tags, not suggestions)"),
    ("-tag:work", "leave out photos with this tag"),
    ("after:2020", "taken on or after the start of that year, month or day"),
    ("before:2021-03", "taken before the start of that period"),
    ("date:2019..2021-02", "taken within a period"),
    ("is:video", "only videos (is:photo: only photos)"),
]

FOOTER = ("Filters combine with words: <i>dog tag:family after:2022</i>. Drop a photo on the field to find "
          "similar ones (<i>like:</i> followed by its path, which can be weighted and mixed with words too). "
          "An empty query lists every photo.")


class QueryHelp(QFrame):
    """A popup (Esc or a click outside closes it) listing the query syntax; a clicked example is emitted."""
    exampleChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Popup)
        self.setObjectName("queryHelp")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        title = QLabel("<b>How to write a query</b> &nbsp; <span style='color:gray'>click an example to run it</span>",
                       self)
        rows = QGridLayout()
        rows.setHorizontalSpacing(14)
        rows.setVerticalSpacing(2)
        rows.setColumnStretch(1, 1)
        self.examples: list[QToolButton] = []
        self.meanings: list[QLabel] = []
        for row, (query, meaning) in enumerate(EXAMPLES):
            button = QToolButton(self)
            button.setObjectName("example")
            button.setText(query)
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.clicked.connect(lambda _=False, q=query: self._chosen(q))
            label = QLabel(meaning, self)
            label.setWordWrap(True)
            rows.addWidget(button, row, 0, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
            rows.addWidget(label, row, 1)
            self.examples.append(button)
            self.meanings.append(label)
        footer = QLabel(FOOTER, self)
        footer.setWordWrap(True)
        footer.setObjectName("muted")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(8)
        layout.addWidget(title)
        layout.addLayout(rows)
        layout.addWidget(footer)

    def show_below(self, anchor: QWidget) -> None:
        """Open under `anchor`, as wide as fits on its screen (at most 640 px), kept on screen."""
        screen = anchor.screen().availableGeometry()
        width = min(640, screen.width() - 16)
        self.setFixedWidth(width)
        self.adjustSize()
        point = anchor.mapToGlobal(QPoint(0, anchor.height() + 4))
        x = max(screen.left() + 8, min(point.x(), screen.right() - width - 8))
        y = min(point.y(), screen.bottom() - self.height() - 8)
        self.move(x, max(screen.top(), y))
        self.show()
        self.examples[0].setFocus()

    def _chosen(self, query: str) -> None:
        self.close()
        self.exampleChosen.emit(query)
