"""The photo view: a large preview of one photo with its EXIF facts, tags and score, and "Find similar".

Opened by double-click or Space on the grid; Left/Right step through the grid's photos, Space or
Escape close it. The photo is decoded (scaled to the screen) on a worker thread; the thumbnail shows
until it arrives.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QKeySequence, QPainter, QPixmap
from PySide6.QtWidgets import (QDialog, QFormLayout, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout,
                               QWidget)

from clipdesk.library.pathnames import display_path
from clipdesk.tagging.tags import USER
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


def describe(details: PhotoDetails) -> list[tuple[str, str]]:
    """The facts shown beside the photo, in reading order; absent facts are left out."""
    photo, meta = details.photo, details.photo.metadata
    rows = []
    if meta.taken_at:
        rows.append(("Taken", meta.taken_at.replace("T", " ")))
    camera = " ".join(part for part in (meta.camera_make, meta.camera_model) if part)
    if camera:
        rows.append(("Camera", camera))
    if meta.width and meta.height:
        rows.append(("Size", f"{meta.width:,} × {meta.height:,} px" + (f" · {meta.format}" if meta.format else "")))
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
        self._lane = Lane(1, "clipdesk-preview", self)

        self.canvas = ImageCanvas(self)
        self.title = QLabel(self)
        self.title.setObjectName("panelTitle")
        self.title.setWordWrap(True)
        self.folder = QLabel(self)
        self.folder.setObjectName("muted")
        self.folder.setWordWrap(True)
        self.folder.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.score = QLabel(self)
        self.facts = QFormLayout()
        self.facts.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        self.tags = QLabel(self)
        self.tags.setWordWrap(True)
        self.similar_button = QPushButton(icon("similar"), "Find similar", self)
        self.similar_button.setObjectName("primary")
        self.open_button = QPushButton(icon("open"), "Open", self)
        self.folder_button = QPushButton(icon("folder"), "Show in folder", self)
        self.similar_button.clicked.connect(self._find_similar)
        self.open_button.clicked.connect(lambda: self.openRequested.emit([self.model.path(self.row)]))
        self.folder_button.clicked.connect(lambda: self.showInFolderRequested.emit(self.model.path(self.row)))

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
        info.addStretch(1)
        info.addWidget(self.similar_button)
        row = QHBoxLayout()
        row.addWidget(self.open_button)
        row.addWidget(self.folder_button)
        info.addLayout(row)
        hint = QLabel("← → previous / next · Space closes", side)
        hint.setObjectName("muted")
        info.addWidget(hint)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(side)

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
        self.score.setText(f"Similarity to the query: <b>{score:.3f}</b>" if score is not None else "")
        self.score.setVisible(score is not None)
        self._set_facts([])
        self.tags.setText("…")
        self.canvas.set_pixmap(self.model.data(self.model.index(row), THUMBNAIL_ROLE))
        self._lane.submit(self._decode, self.photo_id, path, on_done=self._decoded, on_error=self._decode_failed)
        self.service.photo_details(self.photo_id, on_done=self._details)
        self.rowChanged.emit(row)
        if not self.isVisible():
            self.show()
        self.raise_()
        self.activateWindow()

    @staticmethod
    def _decode(photo_id: int, path: str) -> tuple[int, QImage]:
        return photo_id, read_image(path, PREVIEW_MAX_SIDE)

    def _decoded(self, outcome) -> None:
        photo_id, image = outcome
        if photo_id == self.photo_id:  # not a photo stepped past meanwhile
            self.canvas.set_pixmap(QPixmap.fromImage(image))

    def _decode_failed(self, message: str) -> None:
        self.canvas.set_pixmap(self.canvas.pixmap, message)

    def _details(self, details: PhotoDetails | None) -> None:
        if details is None or details.photo.id != self.photo_id:
            return
        self._set_facts(describe(details))
        self.tags.setText(describe_tags(details.tags))

    def _set_facts(self, rows: list[tuple[str, str]]) -> None:
        while self.facts.rowCount():
            self.facts.removeRow(0)
        for label, value in rows:
            name = QLabel(label)
            name.setObjectName("muted")
            self.facts.addRow(name, _value(value))

    def _find_similar(self) -> None:
        self.findSimilarRequested.emit(self.model.path(self.row))
        self.close()

    def keyPressEvent(self, event) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Right, Qt.Key.Key_Down):
            self.show_row(self.row + 1)
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Up):
            self.show_row(self.row - 1)
        elif key == Qt.Key.Key_Space or event.matches(QKeySequence.StandardKey.Cancel):
            self.close()
        else:
            super().keyPressEvent(event)

    def shutdown(self) -> None:
        self._lane.shutdown(5)
