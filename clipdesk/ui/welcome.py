"""The first-run page: get a photo model, add a folder or try the sample library, and what the default
model knows.

Shown while the library has no folders. It says plainly that clipdesk's own default model was
trained on emoji and icons, so it knows icons, emoji and clip-art rather than photographs; for real
photos its first step is "Get a photo model" (the catalog's recommended model, get_model_dialog.py),
and importing a CLIP checkpoint stays available.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QBoxLayout, QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from clipdesk.library.sample_library import sample_library_path
from clipdesk.ui.get_model_dialog import get_photo_model_text
from clipdesk.ui.icons import app_icon, icon
from clipdesk.ui.library_service import ModelState

CARD_WIDTH, CARD_MIN_WIDTH = 600, 300  # the model card: its usual width, and the narrowest it gets

MODEL_NOTE = (
    "<b>About the default model.</b> clipdesk's own model was trained on open emoji and icon collections: "
    "it knows icons, emoji and clip-art, <i>not photographs</i>, so searching real photos with it gives poor "
    "results. For your photos, <b>get a photo model</b> (the button above), or import a real CLIP checkpoint "
    "(for example OpenAI's ViT-B/32) in <b>Settings → Models → Import</b>."
)
NO_MODEL_NOTE = ("<b>No model is installed yet.</b> Photos can be added now; they are indexed as soon as a "
                 "model is imported.")


class WelcomePage(QWidget):
    addFolderRequested = Signal()
    sampleRequested = Signal(str)
    importModelRequested = Signal()
    getModelRequested = Signal()  # the recommended photo model, in the Get a model dialog

    def __init__(self, parent=None):
        super().__init__(parent)
        logo = QLabel(self)
        logo.setPixmap(app_icon().pixmap(96, 96))
        logo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title = QLabel("Welcome to clipdesk", self)
        title.setObjectName("welcomeTitle")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        subtitle = QLabel("Find any photo by typing what is in it. Everything stays on this computer.", self)
        subtitle.setObjectName("muted")
        subtitle.setAlignment(Qt.AlignmentFlag.AlignCenter)

        # The first step for real photos: the emoji model that comes with the app cannot search them.
        self.get_model_button = QPushButton(icon("model"), "  " + get_photo_model_text(), self)
        self.get_model_button.setMinimumHeight(40)
        self.get_model_button.setToolTip("Download the recommended photo model from the model hub (its licence is "
                                         "shown first); it becomes the model that indexes and searches your photos")
        self.get_model_button.clicked.connect(self.getModelRequested.emit)
        self.add_button = QPushButton(icon("folder-add", QPalette.ColorRole.HighlightedText),
                                      "  Add a folder of photos…", self)
        self.add_button.setObjectName("primary")
        self.add_button.setMinimumHeight(40)
        self.add_button.clicked.connect(self.addFolderRequested.emit)
        self.sample_button = QPushButton(icon("photos"), "  Try the sample library", self)
        self.sample_button.setMinimumHeight(40)
        self.sample_button.clicked.connect(self._sample)
        sample = sample_library_path()
        self.sample_button.setEnabled(sample is not None)
        self.sample_button.setToolTip("A few photos bundled with clipdesk, to try searching and tagging"
                                      if sample else "The sample library is not included in this build of clipdesk")
        buttons = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self.buttons = buttons
        buttons.setSpacing(12)
        buttons.addStretch(1)
        buttons.addWidget(self.get_model_button)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.sample_button)
        buttons.addStretch(1)
        drop_hint = QLabel("You can also drop a folder anywhere on this window.", self)
        drop_hint.setObjectName("muted")
        drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)

        card = QFrame(self)
        card.setObjectName("card")
        self.model_note = QLabel(card)
        self.model_note.setWordWrap(True)
        self.model_note.setTextFormat(Qt.TextFormat.RichText)
        self.import_button = QPushButton(icon("model"), "Import a model…", card)
        self.import_button.clicked.connect(self.importModelRequested.emit)
        card_layout = QVBoxLayout(card)
        card_layout.setContentsMargins(18, 16, 18, 16)
        card_layout.addWidget(self.model_note)
        import_row = QHBoxLayout()
        import_row.addStretch(1)
        import_row.addWidget(self.import_button)
        card_layout.addLayout(import_row)
        self.card = card
        # The page fits itself to its width (resizeEvent), so its minimum is the narrowest card's.
        self.setMinimumWidth(CARD_MIN_WIDTH + 40)
        self._fit_width(CARD_WIDTH)

        column = QVBoxLayout()
        column.setSpacing(14)
        column.addStretch(2)
        column.addWidget(logo)
        column.addWidget(title)
        column.addWidget(subtitle)
        column.addSpacing(14)
        column.addLayout(buttons)
        column.addWidget(drop_hint)
        column.addSpacing(22)
        column.addWidget(card, 0, Qt.AlignmentFlag.AlignHCenter)
        column.addStretch(3)
        layout = QHBoxLayout(self)
        layout.addStretch(1)
        layout.addLayout(column, 4)
        layout.addStretch(1)
        self.set_model(ModelState())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_width(self.width() - 40)

    def _fit_width(self, width: int) -> None:
        """On a narrow window the card narrows and the buttons stack, rather than forcing the width."""
        card = max(CARD_MIN_WIDTH, min(CARD_WIDTH, width))
        self.card.setFixedWidth(card)
        # A word-wrapped label is as tall as its text at its own width: give it the card's inner width, or the
        # layout measures it narrower or wider than it is drawn and the last line is cut off.
        self.model_note.setFixedWidth(card - 36)
        row = sum(self.buttons.itemAt(i).sizeHint().width() + 12 for i in range(self.buttons.count()))
        self.buttons.setDirection(QBoxLayout.Direction.LeftToRight if width >= row
                                  else QBoxLayout.Direction.TopToBottom)

    def set_model(self, state: ModelState) -> None:
        note = MODEL_NOTE if state.name else MODEL_NOTE + "<br><br>" + NO_MODEL_NOTE
        self.model_note.setText(note)
        # A photo model is already the default: nothing to get (Settings → Models still offers the catalog).
        self.get_model_button.setVisible(not state.name or state.knows_no_photos or state.error is not None)

    def _sample(self) -> None:
        folder = sample_library_path()
        if folder is not None:
            self.sampleRequested.emit(str(folder))
