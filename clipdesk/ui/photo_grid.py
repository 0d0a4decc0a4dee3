"""The photo grid: one QListView over a list model of photo ids, painted by a delegate.

Model/view keeps 100,000+ photos cheap: the model holds arrays (ids, paths, scores), the view lays
out uniform cells without asking each one, and only cells on screen are painted. A cell shows
a placeholder until its thumbnail arrives from the loader (thumbnails.py); the file name and score
appear on hover. Photos drag out as file URLs (plus their ids, for dropping on a tag in the sidebar).
"""

from __future__ import annotations

import json
import os

from PySide6.QtCore import (QItemSelection, QItemSelectionModel, QMimeData, QModelIndex, QPoint, QRect, QRectF,
                            QSize, QStringListModel, Qt, QUrl, Signal)
from PySide6.QtGui import (QColor, QDrag, QFont, QImage, QKeySequence, QLinearGradient, QPainter, QPainterPath,
                           QPalette, QPen, QPixmap)
from PySide6.QtWidgets import QAbstractItemView, QFrame, QListView, QMenu, QStyle, QStyledItemDelegate

from clipdesk.library.pathnames import display_path
from clipdesk.runtime.video_frames import clock
from clipdesk.ui.icons import icon, tinted_pixmap
from clipdesk.ui.library_service import ResultSet
from clipdesk.ui.thumbnails import PixmapCache, ThumbnailLoader

PHOTO_IDS_MIME = "application/x-clipdesk-photo-ids"
ID_ROLE = Qt.ItemDataRole.UserRole + 1
PATH_ROLE = Qt.ItemDataRole.UserRole + 2
SCORE_ROLE = Qt.ItemDataRole.UserRole + 3
THUMBNAIL_ROLE = Qt.ItemDataRole.UserRole + 4  # QPixmap, or None while loading
FAILED_ROLE = Qt.ItemDataRole.UserRole + 5  # the reason a thumbnail cannot be shown, or None
VIDEO_ROLE = Qt.ItemDataRole.UserRole + 6  # a video's (best moment or None, duration) in seconds; None for photos

DEFAULT_CELL, MIN_CELL, MAX_CELL = 176, 112, 320
GAP = 6  # between cells, and around the thumbnail inside its cell
RADIUS = 7


def photo_ids_from_mime(mime: QMimeData) -> list[int]:
    if not mime.hasFormat(PHOTO_IDS_MIME):
        return []
    try:
        return [int(value) for value in json.loads(bytes(mime.data(PHOTO_IDS_MIME)).decode("ascii"))]
    except (ValueError, TypeError):
        return []


class PhotoGridModel(QStringListModel):
    """The results as a list model. Built on QStringListModel (the file names are its strings) so that
    rowCount(), index() and flags() stay in C++: Qt's passes over every row (layout, the region of a
    100,000-photo selection) would otherwise call into Python once per row, for a second or more.
    Its flags include editable and drop-enabled; the view allows neither (no edit triggers, drag only)."""

    def __init__(self, loader: ThumbnailLoader, parent=None):
        super().__init__(parent)
        self.loader = loader
        self.results = ResultSet.empty()
        self._row_of: dict[int, int] = {}
        self._cache = PixmapCache()
        self._failed: dict[int, str] = {}
        self.side = DEFAULT_CELL - 2 * GAP  # thumbnail side in device pixels
        loader.loaded.connect(self._thumbnail_loaded)
        loader.failed.connect(self._thumbnail_failed)

    # --- contents ---

    def set_results(self, results: ResultSet) -> None:
        self.results = results
        self._row_of = dict(zip(results.ids.tolist(), range(len(results))))
        self._failed.clear()
        # A video found by a query shows the frame that matched: not the one an earlier query showed.
        moments = {photo_id: moment for photo_id, (moment, _) in results.videos.items() if moment is not None}
        self._cache.discard([photo_id for photo_id in results.videos if self.loader.moment(photo_id) !=
                             moments.get(photo_id)])
        self.loader.set_moments(moments)
        self.setStringList(results.names)  # resets the model
        self.loader.forget_pending()

    def set_thumbnail_side(self, side: int) -> None:
        if side != self.side:
            self.side = side
            self._cache.clear()
            self.loader.forget_pending()

    def row_of(self, photo_id: int) -> int | None:
        return self._row_of.get(int(photo_id))

    def photo_id(self, row: int) -> int:
        return int(self.results.ids[row])

    def path(self, row: int) -> str:
        return self.results.paths[row]

    def score(self, row: int) -> float | None:
        scores = self.results.scores
        return None if scores is None else float(scores[row])

    def video(self, row: int) -> tuple[float | None, float] | None:
        """(best moment or None, duration) in seconds for a video; None for a photo."""
        return self.results.videos.get(self.photo_id(row))

    # --- the model's answers (rowCount and index are QStringListModel's) ---

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = index.row()
        if role == THUMBNAIL_ROLE:
            photo_id = self.photo_id(row)
            pixmap = self._cache.get(photo_id)
            if pixmap is None and photo_id not in self._failed:
                self.loader.request(photo_id, self.side)
            return pixmap
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return self.results.names[row]
        if role == Qt.ItemDataRole.ToolTipRole:
            score = self.score(row)
            lines = [self.results.names[row]]
            if score is not None:
                lines.append(f"similarity {score:.3f}")
            video = self.video(row)
            if video is not None:
                lines.append(f"video, {clock(video[1])}" + (f", best at {clock(video[0])}" if video[0] is not None else ""))
            lines.append(display_path(os.path.dirname(self.path(row))))
            return "\n".join(lines)
        if role == ID_ROLE:
            return self.photo_id(row)
        if role == PATH_ROLE:
            return self.path(row)
        if role == SCORE_ROLE:
            return self.score(row)
        if role == FAILED_ROLE:
            return self._failed.get(self.photo_id(row))
        if role == VIDEO_ROLE:
            return self.video(row)
        return None

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list", PHOTO_IDS_MIME]

    def mimeData(self, indexes) -> QMimeData:
        return self.mime_for_rows(sorted({index.row() for index in indexes}))

    def mime_for_rows(self, rows: list[int]) -> QMimeData:
        mime = QMimeData()
        # File managers and other apps take the URLs; clipdesk's own drop targets take the ids.
        mime.setUrls([QUrl.fromLocalFile(self.path(row)) for row in rows])
        mime.setData(PHOTO_IDS_MIME, json.dumps([self.photo_id(row) for row in rows]).encode("ascii"))
        return mime

    def supportedDragActions(self):
        return Qt.DropAction.CopyAction

    # --- thumbnails arriving ---

    def _thumbnail_loaded(self, photo_id: int, side: int, image: QImage) -> None:
        if side != self.side:
            return  # made for a zoom level no longer shown
        self._cache.put(photo_id, QPixmap.fromImage(image))
        self._changed(photo_id)

    def _thumbnail_failed(self, photo_id: int, reason: str) -> None:
        self._failed[photo_id] = reason
        self._changed(photo_id)

    def _changed(self, photo_id: int) -> None:
        row = self._row_of.get(photo_id)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [THUMBNAIL_ROLE])


class PhotoDelegate(QStyledItemDelegate):
    """Paints a cell: the square thumbnail (or a placeholder), the selection ring, and on hover the
    file name and score over a dark gradient."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.cell = QSize(DEFAULT_CELL, DEFAULT_CELL)

    def sizeHint(self, option, index) -> QSize:
        return self.cell

    def paint(self, painter: QPainter, option, index: QModelIndex) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = option.palette
        rect = QRectF(option.rect).adjusted(GAP / 2, GAP / 2, -GAP / 2, -GAP / 2)
        path = QPainterPath()
        path.addRoundedRect(rect, RADIUS, RADIUS)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)

        pixmap = index.data(THUMBNAIL_ROLE)
        painter.setClipPath(path)
        if pixmap is not None and not pixmap.isNull():
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawPixmap(rect.toRect(), pixmap)
        else:
            self._placeholder(painter, rect, palette, failed=index.data(FAILED_ROLE) is not None)
        if hovered:
            self._caption(painter, rect, index)
        video = index.data(VIDEO_ROLE)
        if video is not None:
            self._video_badge(painter, rect, video)
        painter.setClipping(False)

        if selected:
            accent = palette.color(QPalette.ColorRole.Highlight)
            painter.setPen(QPen(accent, 3))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect.adjusted(1.5, 1.5, -1.5, -1.5), RADIUS - 1, RADIUS - 1)
            self._check_badge(painter, rect, accent)
        if option.state & QStyle.StateFlag.State_HasFocus and not selected:
            painter.setPen(QPen(palette.color(QPalette.ColorRole.Highlight), 1.5, Qt.PenStyle.DashLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect.adjusted(1, 1, -1, -1), RADIUS, RADIUS)
        painter.restore()

    def _placeholder(self, painter: QPainter, rect: QRectF, palette: QPalette, failed: bool) -> None:
        painter.fillRect(rect, palette.color(QPalette.ColorRole.AlternateBase))
        side = max(16, int(min(rect.width(), rect.height()) / 4))
        color = palette.color(QPalette.ColorRole.PlaceholderText)
        color.setAlpha(150)
        glyph = tinted_pixmap("broken-image" if failed else "image", side, color, painter.device().devicePixelRatio())
        center = rect.center()
        painter.drawPixmap(QPoint(int(center.x() - side / 2), int(center.y() - side / 2)), glyph)

    def _caption(self, painter: QPainter, rect: QRectF, index: QModelIndex) -> None:
        band = QRectF(rect.left(), rect.bottom() - 46, rect.width(), 46)
        gradient = QLinearGradient(band.topLeft(), band.bottomLeft())
        gradient.setColorAt(0, QColor(0, 0, 0, 0))
        gradient.setColorAt(1, QColor(0, 0, 0, 175))
        painter.fillRect(band, gradient)
        font = QFont(painter.font())
        font.setPointSizeF(max(7.5, font.pointSizeF() * 0.9))
        painter.setFont(font)
        painter.setPen(QColor(255, 255, 255))
        text_rect = band.adjusted(8, 0, -8, -6)
        score = index.data(SCORE_ROLE)
        score_text = f"{score:.3f}" if score is not None else ""
        metrics = painter.fontMetrics()
        score_width = metrics.horizontalAdvance(score_text) + (8 if score_text else 0)
        name = metrics.elidedText(index.data(Qt.ItemDataRole.DisplayRole), Qt.TextElideMode.ElideMiddle,
                                  int(text_rect.width() - score_width))
        align = Qt.AlignmentFlag.AlignBottom
        painter.drawText(text_rect, align | Qt.AlignmentFlag.AlignLeft, name)
        if score_text:
            painter.drawText(text_rect, align | Qt.AlignmentFlag.AlignRight, score_text)

    def _video_badge(self, painter: QPainter, rect: QRectF, video: tuple[float | None, float]) -> None:
        """Top right, on every video: "▶ 1:30", or "▶ 0:42 / 1:30" where a query matched a moment."""
        moment, duration = video
        text = "▶ " + (f"{clock(moment)} / " if moment is not None else "") + clock(duration)
        font = QFont(painter.font())
        font.setPointSizeF(max(7.5, font.pointSizeF() * 0.85))
        painter.setFont(font)
        metrics = painter.fontMetrics()
        badge = QRectF(0, 0, metrics.horizontalAdvance(text) + 12, metrics.height() + 4)
        badge.moveTopRight(QPoint(int(rect.right() - 6), int(rect.top() + 6)))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 160))
        painter.drawRoundedRect(badge, 4, 4)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)

    def _check_badge(self, painter: QPainter, rect: QRectF, accent: QColor) -> None:
        badge = QRectF(rect.left() + 7, rect.top() + 7, 20, 20)
        painter.setPen(QPen(QColor(255, 255, 255), 1.5))
        painter.setBrush(accent)
        painter.drawEllipse(badge)
        check = tinted_pixmap("check", 14, QColor(255, 255, 255), painter.device().devicePixelRatio())
        painter.drawPixmap(QPoint(int(badge.left() + 3), int(badge.top() + 3)), check)


class PhotoGridView(QListView):
    """Keyboard: arrows move, Shift/Ctrl extend, Enter opens, Space previews, Delete asks to untag.
    Ctrl+wheel zooms."""

    openRequested = Signal(list)  # paths
    previewRequested = Signal(int)  # row
    findSimilarRequested = Signal(str)  # path
    showInFolderRequested = Signal(str)
    tagRequested = Signal(list, str)  # photo ids, tag name ("" asks for a new one)
    untagRequested = Signal(list, str)  # photo ids, tag name
    deletePressed = Signal()
    zoomChanged = Signal(int)

    def __init__(self, model: PhotoGridModel, parent=None):
        super().__init__(parent)
        self.setObjectName("photoGrid")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setModel(model)
        self.delegate = PhotoDelegate(self)
        self.setItemDelegate(self.delegate)
        # List mode with wrapping lays out uniform cells arithmetically; icon mode would place each of
        # 100,000 items one by one.
        self.setViewMode(QListView.ViewMode.ListMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setMovement(QListView.Movement.Static)
        self.setLayoutMode(QListView.LayoutMode.SinglePass)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setMouseTracking(True)
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_Hover)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.DefaultContextMenu)
        self.target_cell = DEFAULT_CELL
        self.tag_names: list[str] = []  # offered in the context menu
        self.tag_view: str | None = None
        self.empty_text = ""
        self.doubleClicked.connect(lambda index: self.previewRequested.emit(index.row()))
        self.verticalScrollBar().setSingleStep(24)
        self.setViewportMargins(GAP, GAP, GAP, 0)

    @property
    def grid_model(self) -> PhotoGridModel:
        return self.model()

    # --- layout: cells stretch so the columns fill the width exactly ---

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_cells()

    def set_zoom(self, cell: int) -> None:
        self.target_cell = max(MIN_CELL, min(MAX_CELL, int(cell)))
        self._fit_cells()
        self.zoomChanged.emit(self.target_cell)

    def _fit_cells(self) -> None:
        # One pixel of slack: the wrapping layout starts a new row when a cell would touch the edge.
        width = self.viewport().width() - 1
        columns = max(1, round(width / self.target_cell))
        cell = max(MIN_CELL // 2, width // columns)
        if cell != self.delegate.cell.width():
            self.delegate.cell = QSize(cell, cell)
            self.grid_model.set_thumbnail_side(round((cell - GAP) * self.devicePixelRatioF()))
            self.setGridSize(QSize(cell, cell))

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            step = 16 if event.angleDelta().y() > 0 else -16
            self.set_zoom(self.target_cell + step)
            event.accept()
            return
        super().wheelEvent(event)

    # --- selection helpers ---

    def selected_rows(self) -> list[int]:
        # From the selection's ranges: listing 100,000 selected indexes one by one takes a second.
        rows = []
        for selection_range in self.selectionModel().selection():
            rows.extend(range(selection_range.top(), selection_range.bottom() + 1))
        return sorted(set(rows))

    def selected_count(self) -> int:
        return sum(selection_range.height() for selection_range in self.selectionModel().selection())

    def selected_ids(self) -> list[int]:
        model = self.grid_model
        return [model.photo_id(row) for row in self.selected_rows()]

    def selected_paths(self) -> list[str]:
        model = self.grid_model
        return [model.path(row) for row in self.selected_rows()]

    def select_ids(self, ids, current: int | None = None) -> None:
        """Select the given photos (those still shown) and make `current` the current one."""
        model = self.grid_model
        rows = sorted(row for row in map(model.row_of, ids) if row is not None)
        selection = QItemSelection()
        start = 0
        for position in range(1, len(rows) + 1):  # one range per run of consecutive rows
            if position == len(rows) or rows[position] != rows[position - 1] + 1:
                selection.select(model.index(rows[start]), model.index(rows[position - 1]))
                start = position
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
        self.selectionModel().select(selection, flags)
        row = model.row_of(current) if current is not None else None
        if row is not None:
            self.selectionModel().setCurrentIndex(model.index(row), QItemSelectionModel.SelectionFlag.NoUpdate)

    # --- keys, menu, drag ---

    def keyPressEvent(self, event) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.selected_rows():
            self.openRequested.emit(self.selected_paths())
            return
        if key == Qt.Key.Key_Space and self.currentIndex().isValid():
            self.previewRequested.emit(self.currentIndex().row())
            return
        if event.matches(QKeySequence.StandardKey.Delete) or key == Qt.Key.Key_Backspace:
            self.deletePressed.emit()
            return
        super().keyPressEvent(event)

    def contextMenuEvent(self, event) -> None:
        index = self.indexAt(event.pos())
        if not index.isValid():
            return
        if not self.selectionModel().isSelected(index):
            self.setCurrentIndex(index)
        ids, paths = self.selected_ids(), self.selected_paths()
        clicked = self.grid_model.path(index.row())  # the one-photo actions act on it, not on the first selected
        menu = QMenu(self)
        count = f" {len(paths)} photos" if len(paths) > 1 else ""
        menu.addAction(icon("open"), f"Open{count}", lambda: self.openRequested.emit(paths))
        menu.addAction(icon("folder"), "Show in folder", lambda: self.showInFolderRequested.emit(clicked))
        menu.addAction(icon("copy"), "Copy path" + ("s" if len(paths) > 1 else ""), lambda: copy_paths(paths))
        menu.addSeparator()
        menu.addAction(icon("similar"), "Find similar", lambda: self.findSimilarRequested.emit(clicked))
        menu.addSeparator()
        tag_menu = menu.addMenu(icon("tag"), "Tag")
        for name in self.tag_names:
            tag_menu.addAction(name, lambda n=name: self.tagRequested.emit(ids, n))
        if self.tag_names:
            tag_menu.addSeparator()
        tag_menu.addAction(icon("plus"), "New tag…", lambda: self.tagRequested.emit(ids, ""))
        if self.tag_view:
            menu.addAction(icon("remove"), f"Remove tag “{self.tag_view}”",
                           lambda: self.untagRequested.emit(ids, self.tag_view))
        elif self.tag_names:
            untag_menu = menu.addMenu(icon("remove"), "Remove tag")
            for name in self.tag_names:
                untag_menu.addAction(name, lambda n=name: self.untagRequested.emit(ids, n))
        menu.exec(event.globalPos())

    def startDrag(self, supported_actions) -> None:
        rows = self.selected_rows()
        if not rows:
            return
        drag = QDrag(self)
        drag.setMimeData(self.grid_model.mime_for_rows(rows))
        drag.setPixmap(self._drag_pixmap(rows))
        drag.setHotSpot(QPoint(-12, -12))
        drag.exec(Qt.DropAction.CopyAction, Qt.DropAction.CopyAction)

    def _drag_pixmap(self, rows: list[int]) -> QPixmap:
        """The first photo's thumbnail, small, with a count badge when several are dragged."""
        ratio = self.devicePixelRatioF()
        side = 72
        canvas = QPixmap(round((side + 14) * ratio), round((side + 14) * ratio))
        canvas.setDevicePixelRatio(ratio)
        canvas.fill(Qt.GlobalColor.transparent)
        painter = QPainter(canvas)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        path = QPainterPath()
        path.addRoundedRect(QRectF(0, 0, side, side), 6, 6)
        painter.setClipPath(path)
        thumbnail = self.grid_model.index(rows[0]).data(THUMBNAIL_ROLE)
        if thumbnail is not None:
            painter.drawPixmap(QRect(0, 0, side, side), thumbnail)
        else:
            painter.fillRect(QRect(0, 0, side, side), self.palette().color(QPalette.ColorRole.AlternateBase))
        painter.setClipping(False)
        if len(rows) > 1:
            badge = QRectF(side - 12, side - 12, 26, 26)
            painter.setBrush(self.palette().color(QPalette.ColorRole.Highlight))
            painter.setPen(QPen(QColor(255, 255, 255), 2))
            painter.drawEllipse(badge)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, str(len(rows)) if len(rows) < 100 else "99+")
        painter.end()
        return canvas

    # --- an empty grid says why ---

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.model().rowCount() == 0 and self.empty_text:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            rect = self.viewport().rect().adjusted(40, 0, -40, 0)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.empty_text)
            painter.end()


def copy_paths(paths: list[str]) -> None:
    """Paths as text (one a line) and as file URLs, so both editors and file managers can paste them."""
    from PySide6.QtWidgets import QApplication

    mime = QMimeData()
    mime.setText("\n".join(display_path(path) for path in paths))
    mime.setUrls([QUrl.fromLocalFile(path) for path in paths])
    QApplication.clipboard().setMimeData(mime)
