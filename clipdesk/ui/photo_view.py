"""The photo view: a large preview of one photo with its EXIF facts, tags and score, "Find similar", and a
field to add or remove a tag.

Opened by double-click or Space on the grid; Left/Right (or the previous/next buttons) step through the
grid's photos, Space or Escape close it. The photo is decoded (scaled to the screen) on a worker thread;
the thumbnail shows until it arrives. A video shows the frame its query matched (or its poster frame),
with a button that plays it from that moment.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QPoint, QSize, QStringListModel, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QKeySequence, QPainter, QPixmap, QShortcut
from PySide6.QtWidgets import (QCompleter, QDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QSizePolicy, QToolButton, QVBoxLayout, QWidget)

from clipdesk.library.exif import camera_name
from clipdesk.library.pathnames import display_path
from clipdesk.runtime.video_frames import clock, is_video
from clipdesk.tagging.tags import USER
from clipdesk.ui import desktop
from clipdesk.ui.elided_label import ElidedLabel
from clipdesk.ui.icons import icon
from clipdesk.ui.library_service import LibraryService, PhotoDetails
from clipdesk.ui.photo_grid import THUMBNAIL_ROLE, PhotoGridModel
from clipdesk.ui.thumbnails import read_image
from clipdesk.ui.workers import Lane

PREVIEW_MAX_SIDE = 2560


class ImageCanvas(QWidget):
    """The photo scaled to fit, centred on a dark backdrop (photos look right on dark in either theme)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.pixmap: QPixmap | None = None
        self._scaled: QPixmap | None = None  # the pixmap at the size shown: scaled once, not on every paint
        self.message = ""
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_pixmap(self, pixmap: QPixmap | None, message: str = "") -> None:
        self.pixmap, self.message, self._scaled = pixmap, message, None
        self.update()

    def _shown(self) -> QPixmap:
        ratio = self.devicePixelRatioF()
        target = self.pixmap.size().scaled((self.size() - QSize(24, 24)) * ratio, Qt.AspectRatioMode.KeepAspectRatio)
        if self._scaled is None or self._scaled.size() != target:
            self._scaled = self.pixmap.scaled(target, Qt.AspectRatioMode.KeepAspectRatio,
                                              Qt.TransformationMode.SmoothTransformation)
            self._scaled.setDevicePixelRatio(ratio)
        return self._scaled

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(18, 18, 20))
        if self.pixmap is not None and not self.pixmap.isNull() and self.width() > 24 and self.height() > 24:
            shown = self._shown()
            size = shown.size() / shown.devicePixelRatio()
            painter.drawPixmap(QPoint((self.width() - size.width()) // 2, (self.height() - size.height()) // 2), shown)
        if self.message:
            painter.setPen(QColor(220, 220, 225))
            painter.drawText(self.rect().adjusted(20, 20, -20, -20),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.message)
        painter.end()


def _value(label: str) -> QLabel:
    widget = QLabel(label)
    widget.setWordWrap(True)
    widget.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return widget


class TagField(QLineEdit):
    def keyPressEvent(self, event) -> None:
        super().keyPressEvent(event)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()  # taken by returnPressed: the dialog must not press its default button too


def describe(details: PhotoDetails) -> list[tuple[str, str]]:
    """The facts shown beside the photo, in reading order; absent facts are left out."""
    photo, meta = details.photo, details.photo.metadata
    rows = []
    if meta.taken_at:
        rows.append(("Taken", meta.taken_at.replace("T", " ")))
    camera = camera_name(meta.camera_make, meta.camera_model)
    if camera:
        rows.append(("Camera", camera))
    if meta.width and meta.height:
        rows.append(("Size", f"{meta.width:,} × {meta.height:,} px" + (f" · {meta.format}" if meta.format else "")))
    if meta.duration is not None:
        rows.append(("Length", clock(meta.duration)))
    if details.stack:  # RAW + JPEG, or a Live Photo's still + video, of one shot: shown as one
        rows.append(("Files", " + ".join(os.path.basename(path) for path in details.stack)))
    if photo.size is not None:
        rows.append(("File", f"{photo.size / 2**20:.1f} MB" if photo.size >= 2**20 else f"{photo.size / 1024:.0f} KB"))
    if meta.gps_lat is not None and meta.gps_lon is not None:
        rows.append(("Location", f"{meta.gps_lat:.5f}, {meta.gps_lon:.5f}"))
    if photo.error:
        rows.append(("Problem", photo.error))
    return rows


def describe_tags(tags) -> str:
    if not tags:
        return "No tags yet. Drag photos onto a tag in the sidebar to tag them."
    return ", ".join(tag.name if tag.source == USER else
                     f"{tag.name} (suggested{f', {tag.confidence:.0%}' if tag.confidence is not None else ''})"
                     for tag in tags)


class PhotoView(QDialog):
    """Keys are handled by the dialog, whatever widget has the focus: ← → step through the grid, Space and
    Escape close, T goes to the tag field. Only the tag field keeps ← → and Space for its own text."""

    findSimilarRequested = Signal(str)
    openRequested = Signal(list)
    showInFolderRequested = Signal(str)
    rowChanged = Signal(int)

    def __init__(self, service: LibraryService, model: PhotoGridModel, parent=None):
        super().__init__(parent)
        self.service, self.model = service, model
        self.setWindowTitle("Photo")
        self.resize(1100, 720)
        self.row = -1
        self.photo_id = -1
        self._playable: tuple[str, float | None] | None = None  # (video path, moment) that ▶ plays
        self._user_tags: set[str] = set()  # the shown photo's own tags, case-folded
        self._lane = Lane(1, "clipdesk-preview", self)

        self.canvas = ImageCanvas(self)
        self.canvas.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the photo holds the focus, not a button
        self.previous_button = self._step_button("previous", "Previous photo (←)", -1)
        self.next_button = self._step_button("next", "Next photo (→)", 1)
        # A file name has no spaces to wrap at: elided in the middle (the full name in its tooltip), so both
        # its start and its extension stay visible.
        self.title = ElidedLabel(parent=self)
        self.title.setObjectName("panelTitle")
        self.folder = QLabel(self)
        self.folder.setObjectName("muted")
        self.folder.setWordWrap(True)
        self.folder.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.score = QLabel(self)
        self.facts = QFormLayout()
        self.facts.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        self.tags = QLabel(self)
        self.tags.setWordWrap(True)
        self.tag_field = TagField(self)
        self.tag_field.setPlaceholderText("Add a tag (T)")
        self.tag_field.setClearButtonEnabled(True)
        self.tag_names = QStringListModel(self)
        completer = QCompleter(self.tag_names, self.tag_field)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.tag_field.setCompleter(completer)
        self.tag_button = QPushButton("Add", self)
        self.tag_button.setAutoDefault(False)
        self.tag_field.textChanged.connect(self._update_tag_button)
        self.tag_field.returnPressed.connect(self._apply_tag)
        self.tag_button.clicked.connect(self._apply_tag)
        self._update_tag_button()
        self.similar_button = QPushButton(icon("similar"), "Find similar", self)
        self.similar_button.setObjectName("primary")
        self.open_button = QPushButton(icon("open"), "Open", self)
        self.folder_button = QPushButton(icon("folder"), "Show in folder", self)
        self.play_button = QPushButton("▶ Play", self)
        self.play_button.setAutoDefault(False)
        self.play_button.clicked.connect(self._play)
        self.play_note = QLabel(self)
        self.play_note.setObjectName("muted")
        self.play_note.setWordWrap(True)
        self.similar_button.clicked.connect(self._find_similar)
        self.open_button.clicked.connect(lambda: self.openRequested.emit([self.model.path(self.row)]))
        self.folder_button.clicked.connect(lambda: self.showInFolderRequested.emit(self.model.path(self.row)))
        service.tagsChanged.connect(self._refresh_details)

        side = QWidget(self)
        side.setFixedWidth(300)
        info = QVBoxLayout(side)
        info.setContentsMargins(18, 18, 18, 18)
        info.setSpacing(10)
        info.addWidget(self.title)
        info.addWidget(self.folder)
        info.addWidget(self.score)
        info.addLayout(self.facts)
        tags_title = QLabel("Tags", side)
        tags_title.setObjectName("muted")
        info.addWidget(tags_title)
        info.addWidget(self.tags)
        tag_row = QHBoxLayout()
        tag_row.addWidget(self.tag_field, 1)
        tag_row.addWidget(self.tag_button)
        info.addLayout(tag_row)
        info.addStretch(1)
        info.addWidget(self.play_button)
        info.addWidget(self.play_note)
        info.addWidget(self.similar_button)
        row = QHBoxLayout()
        row.addWidget(self.open_button)
        row.addWidget(self.folder_button)
        info.addLayout(row)
        steps = QHBoxLayout()
        steps.addWidget(self.previous_button)
        steps.addStretch(1)
        steps.addWidget(self.next_button)
        info.addLayout(steps)
        # A row of its own: between the step buttons it was cut at both ends.
        self.hint = QLabel("← → previous / next · Space closes", side)
        self.hint.setObjectName("muted")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        info.addWidget(self.hint)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(side)

        # Shortcuts, not keyPressEvent: a focused button would take the arrows (to move the focus) and
        # Space (to press itself) before the dialog saw them. A text field still gets its own keys: it
        # claims them through ShortcutOverride.
        for key, slot in ((Qt.Key.Key_Left, lambda: self.step(-1)), (Qt.Key.Key_Right, lambda: self.step(1)),
                          (Qt.Key.Key_Space, self.close), (Qt.Key.Key_T, self.tag_field.setFocus)):
            QShortcut(QKeySequence(key), self, activated=slot)

    def _step_button(self, name: str, tip: str, step: int) -> QToolButton:
        button = QToolButton(self)
        button.setIcon(icon(name))
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(lambda: self.step(step))
        return button

    def step(self, offset: int) -> None:
        self.show_row(self.row + offset)

    def set_tag_names(self, names: list[str]) -> None:
        """The library's tags, offered as completions in the tag field."""
        self.tag_names.setStringList(names)

    def show_row(self, row: int) -> None:
        if not 0 <= row < self.model.rowCount():
            return
        self.row = row
        self.photo_id = self.model.photo_id(row)
        path = self.model.path(row)
        name = display_path(os.path.basename(path))
        self.setWindowTitle(name)
        self.title.setText(name)
        # Zero-width spaces after separators let a long path wrap.
        self.folder.setText(display_path(os.path.dirname(path)).replace(os.sep, os.sep + "\u200b"))
        score = self.model.score(row)
        video = self.model.video(row)
        moment = video[0] if video else None
        at = f" at <b>{clock(moment)}</b>" if moment is not None else ""
        self.score.setText(f"Similarity to the query: <b>{score:.3f}</b>{at}" if score is not None else "")
        self.score.setVisible(score is not None)
        # What ▶ plays: this video from its moment; a Live Photo's video once the details name it.
        self._playable = (path, moment) if video is not None else None
        self.play_button.setVisible(video is not None)
        self.play_button.setText(f"▶ Play from {clock(moment)}" if moment is not None else "▶ Play")
        self.play_note.clear()
        self.play_note.hide()
        self.previous_button.setEnabled(row > 0)
        self.next_button.setEnabled(row + 1 < self.model.rowCount())
        self._set_facts([])
        self.tags.setText("…")
        self._user_tags = set()
        self.canvas.set_pixmap(self.model.data(self.model.index(row), THUMBNAIL_ROLE))
        self._lane.submit(self._decode, self.photo_id, path, moment, on_done=self._decoded,
                          on_error=self._decode_failed)
        self.service.photo_details(self.photo_id, on_done=self._details)
        self.rowChanged.emit(row)
        if not self.isVisible():
            self.show()
            self.canvas.setFocus()
        self.raise_()
        self.activateWindow()

    @staticmethod
    def _decode(photo_id: int, path: str, moment: float | None) -> tuple[int, QImage]:
        return photo_id, read_image(path, PREVIEW_MAX_SIDE, moment)

    def _play(self) -> None:
        if self._playable is None:
            return
        note = desktop.play_video(*self._playable)
        self.play_note.setText(note or "")
        self.play_note.setVisible(bool(note))

    def _decoded(self, outcome) -> None:
        photo_id, image = outcome
        if photo_id == self.photo_id:  # not a photo stepped past meanwhile
            self.canvas.set_pixmap(QPixmap.fromImage(image))

    def _decode_failed(self, message: str) -> None:
        self.canvas.set_pixmap(self.canvas.pixmap, message)

    def _refresh_details(self) -> None:
        if self.isVisible() and self.photo_id >= 0:
            self.service.photo_details(self.photo_id, on_done=self._details)

    def _details(self, details: PhotoDetails | None) -> None:
        if details is None or details.photo.id != self.photo_id:
            return
        self._set_facts(describe(details))
        live = [path for path in details.stack if is_video(path)]
        if self._playable is None and live:  # a Live Photo: its still is shown, its short video plays
            self._playable = (live[0], None)
            self.play_button.setText("▶ Play the Live Photo")
            self.play_button.setVisible(True)
        self.tags.setText(describe_tags(details.tags))
        self._user_tags = {tag.name.casefold() for tag in details.tags if tag.source == USER}
        self._update_tag_button()

    def _set_facts(self, rows: list[tuple[str, str]]) -> None:
        while self.facts.rowCount():
            self.facts.removeRow(0)
        for label, value in rows:
            name = QLabel(label)
            name.setObjectName("muted")
            self.facts.addRow(name, _value(value))

    def _update_tag_button(self) -> None:
        name = self.tag_field.text().strip()
        self.tag_button.setText("Remove" if name.casefold() in self._user_tags else "Add")
        self.tag_button.setEnabled(bool(name))

    def _apply_tag(self) -> None:
        """Adds the typed tag to the photo, or removes it when the photo has it already (the button says
        which)."""
        name = self.tag_field.text().strip()
        if not name or self.photo_id < 0:
            return
        if name.casefold() in self._user_tags:
            self.service.untag_photos(name, [self.photo_id])
        else:
            self.service.tag_photos(name, [self.photo_id])
        # Cleared on the next turn of the event loop: Qt gives Return to the field first, and a completer
        # writes the chosen completion back into it after that.
        QTimer.singleShot(0, self.tag_field.clear)

    def _find_similar(self) -> None:
        self.findSimilarRequested.emit(self.model.path(self.row))
        self.close()

    def shutdown(self) -> None:
        self._lane.shutdown(5)
