"""The notice above the grid while the library holds both the sample library and the user's photos: the
sample's emoji are kept out of results (or shown with them, said so), and one click removes them."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton


class SampleNotice(QFrame):
    showSampleChanged = Signal(bool)  # the user asked to show the sample library with their photos, or not
    removeRequested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.text = QLabel(self)
        self.text.setWordWrap(True)
        self.toggle_button = QPushButton(self)
        self.toggle_button.clicked.connect(lambda: self.showSampleChanged.emit(not self.showing))
        self.remove_button = QPushButton("Remove the sample library", self)
        self.remove_button.setToolTip("Takes the sample library's emoji out of your library (Ctrl+Z brings them back)")
        self.remove_button.clicked.connect(self.removeRequested.emit)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 8, 6)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.toggle_button)
        layout.addWidget(self.remove_button)
        self.showing = False
        self.hide()

    def show_for(self, sample: tuple[str, bool] | None) -> None:
        """What a result set says of the sample library (ResultSet.sample)."""
        if sample is None:
            self.hide()
            return
        self.showing = sample[1]
        if self.showing:
            self.text.setText("<b>These results include the sample library</b>: its emoji and icons are not your "
                              "photos.")
            self.toggle_button.setText("Keep it apart")
        else:
            self.text.setText("Your photos only: the <b>sample library</b> (emoji and icons) is kept out of these "
                              "results.")
            self.toggle_button.setText("Show it too")
        self.show()
