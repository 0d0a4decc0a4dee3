"""The photo grid: one QListView over a list model of photo ids, painted by a delegate.

Model/view keeps 100,000+ photos cheap: the model holds arrays (ids, paths, scores, aspect ratios), the
view lays out cells without asking each one, and only cells on screen are painted. Two layouts (View menu):
square cells (QListView's own uniform layout, thumbnails cropped to squares), or justified rows
(justified.py: photos uncropped at their own aspect ratio, rows filling the width; the view answers Qt's
geometry questions — visualRect, indexAt, moveCursor, setSelection, scrollTo — from that layout and
paints the cells itself). A cell shows a placeholder until its thumbnail arrives from the loader
(thumbnails.py); the file name and score appear on hover, the score on every cell when the View menu
asks for it. Photos drag out as file URLs (plus their ids, for dropping on a tag in the sidebar).
"""

from __future__ import annotations

import json
import os

import numpy as np
from PySide6.QtCore import (QItemSelection, QItemSelectionModel, QMimeData, QModelIndex, QPoint, QRect, QRectF,
                            QSize, QStringListModel, Qt, QUrl, Signal)
from PySide6.QtGui import (QColor, QCursor, QDrag, QFont, QImage, QKeySequence, QLinearGradient, QPainter,
                           QPainterPath, QPalette, QPen, QPixmap, QRegion)
from PySide6.QtWidgets import (QAbstractItemView, QFrame, QListView, QMenu, QStyle, QStyledItemDelegate,
                               QStyleOptionViewItem)

from clipdesk.library.pathnames import display_path
from clipdesk.runtime.video_frames import clock
from clipdesk.ui.icons import icon, tinted_pixmap
from clipdesk.ui.justified import Layout, justified_layout
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
        self.square = True  # thumbnails cropped to squares of `side`; False: uncropped, `side` high
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

    def set_thumbnail_side(self, side: int, square: bool = True) -> None:
        if side != self.side or square != self.square:
            self.side, self.square = side, square
            self._cache.clear()
            self.loader.forget_pending()

    def aspects(self) -> np.ndarray:
        """Width / height of each photo (1.0 where unknown)."""
        aspects = self.results.aspects
        return aspects if aspects is not None else np.ones(len(self.results), np.float32)

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
                self.loader.request(photo_id, self.side, self.square)
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
                moment = f", best at {clock(video[0])}" if video[0] is not None else ""
                lines.append(f"video, {clock(video[1])}{moment}")
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
        if side != (self.side if self.square else -self.side):
            return  # made for a zoom level or layout no longer shown
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
    """Paints a cell: the thumbnail (or a placeholder), the selection ring, on hover the file name and score
    over a dark gradient, and the score on every cell when `show_scores` is set."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.cell = QSize(DEFAULT_CELL, DEFAULT_CELL)
        self.inset = GAP / 2  # between the cell and its photo (justified cells are the photo itself)
        self.show_scores = False

    def sizeHint(self, option, index) -> QSize:
        return self.cell

    def paint(self, painter: QPainter, option, index: QModelIndex) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = option.palette
        inset = self.inset
        rect = QRectF(option.rect).adjusted(inset, inset, -inset, -inset)
        path = QPainterPath()
        path.addRoundedRect(rect, RADIUS, RADIUS)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)

        pixmap = index.data(THUMBNAIL_ROLE)
        painter.setClipPath(path)
        if pixmap is not None and not pixmap.isNull():
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawPixmap(rect, pixmap, cover_source(pixmap, rect))
        else:
            self._placeholder(painter, rect, palette, failed=index.data(FAILED_ROLE) is not None)
        if hovered:
            self._caption(painter, rect, index)
        elif self.show_scores:
            self._score_badge(painter, rect, index)
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

    def _score_badge(self, painter: QPainter, rect: QRectF, index: QModelIndex) -> None:
        """The similarity score in a dark pill at the bottom right (nothing for a listing without scores)."""
        score = index.data(SCORE_ROLE)
        if score is None:
            return
        font = QFont(painter.font())
        font.setPointSizeF(max(7.5, font.pointSizeF() * 0.85))
        painter.setFont(font)
        text = f"{score:.3f}"
        metrics = painter.fontMetrics()
        width, height = metrics.horizontalAdvance(text) + 10, metrics.height() + 2
        pill = QRectF(rect.right() - width - 5, rect.bottom() - height - 5, width, height)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 165))
        painter.drawRoundedRect(pill, height / 2, height / 2)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, text)

    def _check_badge(self, painter: QPainter, rect: QRectF, accent: QColor) -> None:
        badge = QRectF(rect.left() + 7, rect.top() + 7, 20, 20)
        painter.setPen(QPen(QColor(255, 255, 255), 1.5))
        painter.setBrush(accent)
        painter.drawEllipse(badge)
        check = tinted_pixmap("check", 14, QColor(255, 255, 255), painter.device().devicePixelRatio())
        painter.drawPixmap(QPoint(int(badge.left() + 3), int(badge.top() + 3)), check)


def cover_source(pixmap: QPixmap, rect: QRectF) -> QRectF:
    """The middle part of `pixmap` with the shape of `rect` (a thumbnail a pixel off the cell's shape, or a
    square one in a justified cell while its own loads, is cropped rather than stretched)."""
    width, height = pixmap.width(), pixmap.height()
    if rect.height() <= 0 or height <= 0:
        return QRectF(0, 0, width, height)
    shape = rect.width() / rect.height()
    if width / height > shape:
        cut = height * shape
        return QRectF((width - cut) / 2, 0, cut, height)
    cut = width / shape
    return QRectF(0, (height - cut) / 2, width, cut)


class PhotoGridView(QListView):
    """Keyboard: arrows move, Shift/Ctrl extend, Enter opens, Space previews, Delete asks to untag,
    Home/End and Page Up/Down jump. Ctrl+wheel zooms."""

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
        # Set before any call into Qt: Qt calls the overrides below (scrollTo, visualRect) from its setters.
        self.justified = False  # justified rows (set_justified) rather than square cells
        self._layout: Layout | None = None  # the justified layout, made when first needed
        self._layout_key: tuple | None = None
        self._band_origin: QPoint | None = None  # where a rubber band started (content coordinates)
        self._band = QRect()
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
        for signal in (model.modelReset, model.rowsInserted, model.rowsRemoved, model.layoutChanged):
            signal.connect(self._forget_layout)
        self.tag_names: list[str] = []  # offered in the context menu
        self.tag_view: str | None = None
        self.empty_text = ""
        self.doubleClicked.connect(lambda index: self.previewRequested.emit(index.row()))
        self.verticalScrollBar().setSingleStep(24)
        self.setViewportMargins(GAP, GAP, GAP, 0)

    @property
    def grid_model(self) -> PhotoGridModel:
        return self.model()

    # --- layout: square cells stretch so the columns fill the width exactly; justified rows fill it ---

    def resizeEvent(self, event) -> None:
        self._forget_layout()
        super().resizeEvent(event)
        self._fit_cells()

    def set_zoom(self, cell: int) -> None:
        self.target_cell = max(MIN_CELL, min(MAX_CELL, int(cell)))
        self._forget_layout()
        self._fit_cells()
        self.zoomChanged.emit(self.target_cell)

    def set_justified(self, justified: bool) -> None:
        """Justified rows of uncropped photos, or square cells; the current photo stays in view."""
        if justified == self.justified:
            return
        self.justified = justified
        self.delegate.inset = 0 if justified else GAP / 2
        self._forget_layout()
        self.delegate.cell = QSize()  # _fit_cells sets the square cells and the thumbnail size again
        self._fit_cells()
        self.doItemsLayout()
        self.viewport().update()
        if self.currentIndex().isValid():
            self.scrollTo(self.currentIndex(), QAbstractItemView.ScrollHint.PositionAtCenter)

    def set_show_scores(self, shown: bool) -> None:
        self.delegate.show_scores = shown
        self.viewport().update()

    def _fit_cells(self) -> None:
        ratio = self.devicePixelRatioF()
        if self.justified:
            # Rows are at most the target height: thumbnails made that high stay sharp in every row.
            self.grid_model.set_thumbnail_side(round(self._row_height() * ratio), square=False)
            self.updateGeometries()
            self.viewport().update()
            return
        # One pixel of slack: the wrapping layout starts a new row when a cell would touch the edge.
        width = self.viewport().width() - 1
        columns = max(1, round(width / self.target_cell))
        cell = max(MIN_CELL // 2, width // columns)
        side = round((cell - GAP) * ratio)
        if cell != self.delegate.cell.width() or side != self.grid_model.side or not self.grid_model.square:
            self.delegate.cell = QSize(cell, cell)
            self.grid_model.set_thumbnail_side(side)
            self.setGridSize(QSize(cell, cell))

    def _row_height(self) -> int:
        return self.target_cell - GAP

    def _forget_layout(self, *_) -> None:
        self._layout = None

    def justified_layout(self) -> Layout:
        """The justified layout for the current results, width and zoom (made again when one changes)."""
        margin = GAP // 2
        model = self.grid_model
        key = (id(model.results), model.rowCount(), self.viewport().width(), self.target_cell)
        if self._layout is None or key != self._layout_key:
            width = self.viewport().width() - 2 * margin
            self._layout = justified_layout(model.aspects()[:model.rowCount()], width, self._row_height(), GAP,
                                            margin)
            self._layout_key = key
        return self._layout

    # The geometry Qt asks a view for: QListView's answers for square cells, the justified layout's otherwise.

    def visualRect(self, index: QModelIndex) -> QRect:
        if not self.justified:
            return super().visualRect(index)
        if not index.isValid() or index.row() >= self.grid_model.rowCount():
            return QRect()
        x, y, width, height = self.justified_layout().rect(index.row())
        return QRect(x - self.horizontalOffset(), y - self.verticalOffset(), width, height)

    def indexAt(self, point: QPoint) -> QModelIndex:
        if not self.justified:
            return super().indexAt(point)
        row = self.justified_layout().photo_at(point.x() + self.horizontalOffset(), point.y() + self.verticalOffset())
        return self.grid_model.index(row) if row is not None else QModelIndex()

    def moveCursor(self, action, modifiers) -> QModelIndex:
        if not self.justified:
            return super().moveCursor(action, modifiers)
        count = self.grid_model.rowCount()
        if not count:
            return QModelIndex()
        current = self.currentIndex()
        if not current.isValid():
            return self.grid_model.index(0)
        layout, row = self.justified_layout(), current.row()
        x, y, width, height = layout.rect(row)
        line = int(layout.line[row])
        moves = QAbstractItemView.CursorAction
        if action in (moves.MoveRight, moves.MoveNext):
            row = min(count - 1, row + 1)
        elif action in (moves.MoveLeft, moves.MovePrevious):
            row = max(0, row - 1)
        elif action == moves.MoveHome:
            row = 0
        elif action == moves.MoveEnd:
            row = count - 1
        elif action in (moves.MoveUp, moves.MoveDown, moves.MovePageUp, moves.MovePageDown):
            if action in (moves.MoveUp, moves.MoveDown):
                line += -1 if action == moves.MoveUp else 1
            else:  # a viewport's height up or down, to the row there
                page = self.viewport().height() * (-1 if action == moves.MovePageUp else 1)
                line = layout.line_at(y + height / 2 + page)
            line = max(0, min(layout.lines - 1, line))
            row = layout.nearest_in_line(line, x + width / 2)
        return self.grid_model.index(row)

    def setSelection(self, rect: QRect, command) -> None:
        if not self.justified:
            super().setSelection(rect, command)
            return
        layout, dx, dy = self.justified_layout(), self.horizontalOffset(), self.verticalOffset()
        rect = rect.normalized()  # a drag up or left comes as a rectangle of negative size
        selection = QItemSelection()
        if rect.width() <= 1 and rect.height() <= 1:  # a click: the photo under it
            row = layout.photo_at(rect.x() + dx, rect.y() + dy)
            runs = [] if row is None else [(row, row)]
        else:
            runs = layout.photos_in(rect.left() + dx, rect.top() + dy, rect.right() + dx, rect.bottom() + dy)
        model = self.grid_model
        for first, last in runs:
            selection.select(model.index(first), model.index(last))
        self.selectionModel().select(selection, command)

    def visualRegionForSelection(self, selection: QItemSelection) -> QRegion:
        # Only the rows on screen: QListView's asks for every selected row's rectangle (100,000 calls).
        first, last = self._rows_on_screen()
        region = QRegion()
        model = self.grid_model
        for selection_range in selection:
            for row in range(max(first, selection_range.top()), min(last, selection_range.bottom()) + 1):
                region += self.visualRect(model.index(row))
        return region

    def _rows_on_screen(self) -> tuple[int, int]:
        count = self.grid_model.rowCount()
        if not count:
            return 0, -1
        height = self.viewport().height()
        if self.justified:
            layout, top = self.justified_layout(), self.verticalOffset()
            first = max(0, layout.line_at(top - GAP))
            last = min(layout.lines - 1, layout.line_at(top + height))
            return int(layout.starts[first]), int(layout.starts[last + 1]) - 1
        first, last = super().indexAt(QPoint(1, 1)), super().indexAt(QPoint(self.viewport().width() - 2, height - 2))
        return (first.row() if first.isValid() else 0), (last.row() if last.isValid() else count - 1)

    def scrollTo(self, index: QModelIndex, hint=QAbstractItemView.ScrollHint.EnsureVisible) -> None:
        if not self.justified:
            super().scrollTo(index, hint)
            return
        if not index.isValid():
            return
        _, y, _, height = self.justified_layout().rect(index.row())
        bar, view, margin = self.verticalScrollBar(), self.viewport().height(), GAP // 2
        top = bar.value()
        hints = QAbstractItemView.ScrollHint
        if hint == hints.PositionAtTop:
            top = y - margin
        elif hint == hints.PositionAtBottom:
            top = y + height + margin - view
        elif hint == hints.PositionAtCenter:
            top = y + (height - view) // 2
        elif y - margin < top:
            top = y - margin
        elif y + height + margin > top + view:
            top = y + height + margin - view
        bar.setValue(top)

    def updateGeometries(self) -> None:
        super().updateGeometries()
        if self.justified:
            bar, view = self.verticalScrollBar(), self.viewport().height()
            bar.setRange(0, max(0, self.justified_layout().content_height - view))
            bar.setPageStep(view)
            bar.setSingleStep(24)

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
            painter.drawPixmap(QRectF(0, 0, side, side), thumbnail, cover_source(thumbnail, QRectF(0, 0, side, side)))
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

    # --- a rubber band over a justified grid (QListView draws none: its own paint is not used there) ---

    def mousePressEvent(self, event) -> None:
        point = event.position().toPoint()
        self._band_origin = None
        if self.justified and event.button() == Qt.MouseButton.LeftButton and not self.indexAt(point).isValid():
            self._band_origin = point + QPoint(self.horizontalOffset(), self.verticalOffset())
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        super().mouseMoveEvent(event)
        if self._band_origin is not None and self.state() == QAbstractItemView.State.DragSelectingState:
            origin = self._band_origin - QPoint(self.horizontalOffset(), self.verticalOffset())
            self._band = QRect(origin, event.position().toPoint()).normalized()
            self.viewport().update()

    def mouseReleaseEvent(self, event) -> None:
        super().mouseReleaseEvent(event)
        if self._band_origin is not None:
            self._band_origin, self._band = None, QRect()
            self.viewport().update()

    # --- painting: QListView's for square cells; the justified cells here ---

    def _paint_justified(self, event) -> None:
        painter = QPainter(self.viewport())
        area, dx, dy = event.rect(), self.horizontalOffset(), self.verticalOffset()
        runs = self.justified_layout().photos_in(area.left() + dx, area.top() + dy, area.right() + dx,
                                                 area.bottom() + dy)
        base = QStyleOptionViewItem()
        self.initViewItemOption(base)
        model, selected = self.grid_model, self.selectionModel()
        current, focused = self.currentIndex(), self.hasFocus()
        pointer = self.viewport().mapFromGlobal(QCursor.pos())
        hovered = self.indexAt(pointer) if self.viewport().underMouse() else QModelIndex()
        flags = QStyle.StateFlag
        for first, last in runs:
            for row in range(first, last + 1):
                index = model.index(row)
                option = QStyleOptionViewItem(base)
                option.rect = self.visualRect(index)
                option.index = index
                if selected.isSelected(index):
                    option.state |= flags.State_Selected
                if index == hovered:
                    option.state |= flags.State_MouseOver
                if focused and index == current:
                    option.state |= flags.State_HasFocus
                self.delegate.paint(painter, option, index)
        if not self._band.isNull():
            accent = self.palette().color(QPalette.ColorRole.Highlight)
            painter.setPen(QPen(accent, 1))
            fill = QColor(accent)
            fill.setAlpha(60)
            painter.setBrush(fill)
            painter.drawRect(self._band.adjusted(0, 0, -1, -1))
        painter.end()

    # --- an empty grid says why ---

    def paintEvent(self, event) -> None:
        if self.justified:
            self._paint_justified(event)
        else:
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
