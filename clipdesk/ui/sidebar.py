"""The sidebar: the library's folders, tags, keywords and label sets with their counts.

Clicking an entry filters the grid (it becomes a query in the search bar, so the filter is visible
and editable); clicking a section's title collapses or expands the section. Keywords (tags first read
from the photos' files) are a section apart from the tags made in clipdesk. A name is elided in the
middle when the sidebar is narrow, never below MIN_NAME_CHARS characters: the count gives way first. Folders dropped from a file manager are added and indexed; photos dropped on a tag
(from the grid, or image files from a file manager) get that tag, and on "New tag…" a new one.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QModelIndex, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QPen, QPolygonF, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QMenu, QPushButton, QStyle, QStyledItemDelegate,
                               QTreeView, QVBoxLayout, QWidget)

from clipdesk.library.pathnames import display_path
from clipdesk.search.query import IMAGE_EXTENSIONS
from clipdesk.ui.icons import icon, tinted_pixmap
from clipdesk.ui.library_service import SidebarData
from clipdesk.ui.photo_grid import photo_ids_from_mime

KIND_ROLE = Qt.ItemDataRole.UserRole + 1
VALUE_ROLE = Qt.ItemDataRole.UserRole + 2
COUNT_ROLE = Qt.ItemDataRole.UserRole + 3
ICON_ROLE = Qt.ItemDataRole.UserRole + 4
SHORT_COUNT_ROLE = Qt.ItemDataRole.UserRole + 5  # the count when the full one leaves the name too little room

# Kinds of sidebar entries.
ALL, FOLDER, TAG, NEW_TAG, LABEL_SET, PROBLEMS = "all", "folder", "tag", "new-tag", "label-set", "problems"
VIDEOS = "videos"
HEADER = "header"
ROW_HEIGHT = 30
MIN_NAME_CHARS = 10  # a name is never elided to fewer characters than this (plus the ellipsis)
# Entry geometry, shared by paint() and the sidebar's minimum width.
ENTRY_MARGIN, ICON_ADVANCE, COUNT_GAP = 16, 26, 16


def sidebar_min_width(metrics: QFontMetrics) -> int:
    """Room for an icon, MIN_NAME_CHARS average characters and a four-digit count, with margins."""
    return (2 * ENTRY_MARGIN + ICON_ADVANCE + metrics.averageCharWidth() * MIN_NAME_CHARS + COUNT_GAP
            + metrics.horizontalAdvance("9,999"))


def count_text(count: int | str | None) -> str:
    return f"{count:,}" if isinstance(count, int) else (count or "")


def elided_middle(name: str, keep: int) -> str:
    """`name` with all but `keep` characters replaced by one ellipsis in the middle."""
    if keep >= len(name):
        return name
    head, tail = (keep + 1) // 2, keep // 2
    return name[:head] + "…" + (name[-tail:] if tail else "")


def elide_middle(metrics: QFontMetrics, name: str, width: int) -> str:
    """The longest middle elision of `name` that fits `width` (Qt's own elidedText may keep fewer
    characters than fit, and where it keeps them varies)."""
    low, high = 0, len(name)  # invariant: keeping `low` characters fits (0: a lone ellipsis)
    while low < high:
        middle = (low + high + 1) // 2
        if metrics.horizontalAdvance(elided_middle(name, middle)) <= width:
            low = middle
        else:
            high = middle - 1
    return elided_middle(name, low)


def fitted_entry(metrics: QFontMetrics, name: str, counts: list[str], width: int) -> tuple[str, str]:
    """The name and count to show in `width` pixels: the first count (the full one, then shorter ones,
    then none) that leaves the name room for MIN_NAME_CHARS characters, and the name elided to what
    is left."""
    needed = metrics.horizontalAdvance(elided_middle(name, MIN_NAME_CHARS))
    count = ""
    for candidate in counts:
        if width - metrics.horizontalAdvance(candidate) - COUNT_GAP >= needed:
            count = candidate
            break
    room = width - (metrics.horizontalAdvance(count) + COUNT_GAP if count else 0)
    return elide_middle(metrics, name, room), count


def dropped_folders(mime) -> list[str]:
    """Local folders a drag carries (only when every URL is one)."""
    if not mime.hasUrls():
        return []
    paths = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]
    return paths if paths and len(paths) == len(mime.urls()) and all(os.path.isdir(p) for p in paths) else []


def dropped_photo_files(mime) -> list[str]:
    if not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls()
            if url.isLocalFile() and url.toLocalFile().lower().endswith(IMAGE_EXTENSIONS)]


class SidebarDelegate(QStyledItemDelegate):
    """Section headers in small capitals; entries with a tinted icon, the name and a muted count."""

    def __init__(self, view: "SidebarView"):
        super().__init__(view)
        self.view = view

    def sizeHint(self, option, index) -> QSize:
        header = index.data(KIND_ROLE) == HEADER
        return QSize(100, 34 if header else ROW_HEIGHT)

    def paint(self, painter: QPainter, option, index: QModelIndex) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = option.palette
        kind = index.data(KIND_ROLE)
        rect = QRect(option.rect)
        rect.setLeft(6)  # entries line up whatever their depth
        rect.setRight(option.rect.right() - 6)
        if kind == HEADER:
            font = QFont(option.font)
            font.setPointSizeF(font.pointSizeF() * 0.82)
            font.setBold(True)
            font.setLetterSpacing(QFont.SpacingType.PercentageSpacing, 108)
            painter.setFont(font)
            color = palette.color(QPalette.ColorRole.PlaceholderText)
            painter.setPen(color)
            painter.drawText(rect.adjusted(8, 0, 0, -4), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom,
                             index.data(Qt.ItemDataRole.DisplayRole).upper())
            # A chevron at the right: pointing down while the section is open, right while collapsed.
            cx, cy = rect.right() - 10, rect.bottom() - 4 - painter.fontMetrics().height() / 2
            points = ([(-3.5, -1.5), (3.5, -1.5), (0, 2.5)] if self.view.isExpanded(index)
                      else [(-1.5, -3.5), (-1.5, 3.5), (2.5, 0)])
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            painter.drawPolygon(QPolygonF([QPointF(cx + dx, cy + dy) for dx, dy in points]))
            painter.restore()
            return
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        dropping = self.view.drop_row == index
        accent = palette.color(QPalette.ColorRole.Highlight)
        if selected:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(accent)
            painter.drawRoundedRect(QRectF(rect), 6, 6)
        elif dropping:
            fill = QColor(accent)
            fill.setAlpha(60)
            painter.setPen(QPen(accent, 1.5))
            painter.setBrush(fill)
            painter.drawRoundedRect(QRectF(rect).adjusted(1, 1, -1, -1), 6, 6)
        elif hovered:
            fill = QColor(palette.color(QPalette.ColorRole.Text))
            fill.setAlpha(18)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(fill)
            painter.drawRoundedRect(QRectF(rect), 6, 6)
        text_color = palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        muted = QColor(text_color)
        muted.setAlpha(150)
        icon_name = index.data(ICON_ROLE)
        x = rect.left() + 10
        if icon_name:
            pixmap = tinted_pixmap(icon_name, 16, accent if not selected and kind in (ALL,) else
                                   (text_color if selected else muted), painter.device().devicePixelRatio())
            painter.drawPixmap(x, rect.center().y() - 7, pixmap)
            x += ICON_ADVANCE
        counts = [count_text(index.data(role)) for role in (COUNT_ROLE, SHORT_COUNT_ROLE)]
        metrics = painter.fontMetrics()
        name, shown_count = fitted_entry(metrics, index.data(Qt.ItemDataRole.DisplayRole),
                                         [c for c in counts if c], rect.right() - x - 10)
        count_width = metrics.horizontalAdvance(shown_count)
        text_rect = QRect(x, rect.top(), rect.right() - x - 10, rect.height())
        painter.setPen(muted if kind == NEW_TAG else text_color)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, name)
        if shown_count:
            painter.setPen(muted)
            painter.drawText(QRect(rect.right() - count_width - 10, rect.top(), count_width, rect.height()),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, shown_count)
        painter.restore()


class SidebarView(QTreeView):
    filterRequested = Signal(str, str)  # kind, value
    folderDropped = Signal(list)  # folder paths
    photosDroppedOnTag = Signal(str, list, list)  # tag name ("" = new tag), photo ids, photo file paths
    removeFolderRequested = Signal(str)
    reindexRequested = Signal(str)  # a folder, or "" for the whole library
    addFolderRequested = Signal()
    deleteTagRequested = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("sidebar")
        self.items = QStandardItemModel(self)
        self.setModel(self.items)
        self.setItemDelegate(SidebarDelegate(self))
        self.setHeaderHidden(True)
        self.setRootIsDecorated(False)
        self.setIndentation(0)
        self.setUniformRowHeights(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setMouseTracking(True)
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_Hover)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDropIndicatorShown(False)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setItemsExpandable(False)
        self.drop_row = QModelIndex()
        self.data: SidebarData | None = None
        self._selected: tuple[str, str] | None = (ALL, "")
        self.collapsed: set[str] = set()  # titles of the sections the user collapsed
        self.clicked.connect(self._clicked)
        self.populate(SidebarData(0, []))

    # --- contents ---

    def populate(self, data: SidebarData) -> None:
        """Fill the tree from `data`, keeping which sections are collapsed and where it is scrolled to
        (a new tag must not send the user back to the top)."""
        scroll = self.verticalScrollBar().value()
        self.data = data
        self.items.clear()
        root = self.items.invisibleRootItem()
        library = self._header("Library")
        root.appendRow(library)
        library.appendRow(self._entry("All photos", ALL, "", data.total, "photos"))
        if data.videos:
            library.appendRow(self._entry("Videos", VIDEOS, "", data.videos, "video"))
        if data.problems:
            library.appendRow(self._entry("Could not be indexed", PROBLEMS, "", data.problems, "warning"))
        folders = self._header("Folders")
        root.appendRow(folders)
        for folder, count in data.folders:
            entry = self._entry(os.path.basename(folder.path.rstrip(os.sep)) or folder.path, FOLDER, folder.path,
                                count, "folder")
            entry.setToolTip(display_path(folder.path))
            folders.appendRow(entry)
        tags = self._header("Tags")
        root.appendRow(tags)
        for tag in data.tags:
            if not tag.from_files:
                tags.appendRow(self._tag_entry(tag))
        new_tag = self._entry("New tag…", NEW_TAG, "", None, "plus")
        new_tag.setToolTip("Drop photos here to give them a new tag")
        tags.appendRow(new_tag)
        keywords = [tag for tag in data.tags if tag.from_files]
        if keywords:
            section = self._header("Keywords")
            section.setToolTip("Keywords read from the photos' files (XMP and IPTC), kept as tags")
            root.appendRow(section)
            for tag in keywords:
                section.appendRow(self._tag_entry(tag))
        if data.label_sets:
            label_sets = self._header("Label sets")
            root.appendRow(label_sets)
            for label_set in data.label_sets:
                entry = self._entry(label_set.name, LABEL_SET, label_set.name, len(label_set.labels), "labels")
                entry.setToolTip(f"{label_set.name}\nLabels: " + ", ".join(label_set.labels))
                label_sets.appendRow(entry)
        for row in range(self.items.rowCount()):
            index = self.items.index(row, 0)
            self.setExpanded(index, index.data(Qt.ItemDataRole.DisplayRole) not in self.collapsed)
        self._restore_selection()
        self.verticalScrollBar().setValue(scroll)

    def _tag_entry(self, tag) -> QStandardItem:
        photos, suggested = f"{tag.photos:,}" if tag.photos or not tag.suggested else "", \
            f"+{tag.suggested:,}" if tag.suggested else ""
        entry = self._entry(tag.name, TAG, tag.name, " ".join(part for part in (photos, suggested) if part), "tag")
        entry.setData(photos or suggested, SHORT_COUNT_ROLE)  # "23" of "23 +15" when the name needs the room
        entry.setToolTip(f"{tag.name}\n{tag.photos:,} photos tagged" + (
            f", suggested for {tag.suggested:,} more (not yet accepted)" if tag.suggested else ""))
        return entry

    def _header(self, title: str) -> QStandardItem:
        item = QStandardItem(title)
        item.setData(HEADER, KIND_ROLE)
        item.setFlags(Qt.ItemFlag.ItemIsEnabled)
        return item

    def _entry(self, title: str, kind: str, value: str, count: int | str | None, icon_name: str) -> QStandardItem:
        item = QStandardItem(title)
        item.setData(kind, KIND_ROLE)
        item.setData(value, VALUE_ROLE)
        item.setData(count, COUNT_ROLE)
        item.setData(icon_name, ICON_ROLE)
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsDropEnabled
        if kind != NEW_TAG:
            flags |= Qt.ItemFlag.ItemIsSelectable
        item.setFlags(flags)
        return item

    def entries(self, kind: str | None = None):
        """(index, kind, value) of every entry, headers left out."""
        for section in range(self.items.rowCount()):
            header = self.items.index(section, 0)
            for row in range(self.items.rowCount(header)):
                index = self.items.index(row, 0, header)
                if kind is None or index.data(KIND_ROLE) == kind:
                    yield index, index.data(KIND_ROLE), index.data(VALUE_ROLE)

    def find(self, kind: str, value: str = "") -> QModelIndex:
        for index, entry_kind, entry_value in self.entries(kind):
            if entry_value == value or (kind == TAG and entry_value.lower() == value.lower()):
                return index
        return QModelIndex()


    def show_selection(self, kind: str | None, value: str = "") -> None:
        """Highlight the entry matching the current query (none when the query is something else)."""
        self._selected = (kind, value) if kind else None
        self._restore_selection()

    def _restore_selection(self) -> None:
        index = self.find(*self._selected) if self._selected else QModelIndex()
        if index.isValid():
            self.setCurrentIndex(index)
        else:
            self.clearSelection()

    def toggle_section(self, index: QModelIndex) -> None:
        title = index.data(Qt.ItemDataRole.DisplayRole)
        expanded = not self.isExpanded(index)
        self.setExpanded(index, expanded)
        (self.collapsed.discard if expanded else self.collapsed.add)(title)

    def _clicked(self, index: QModelIndex) -> None:
        kind = index.data(KIND_ROLE)
        if kind == HEADER:
            self.toggle_section(index)
            return
        if kind in (NEW_TAG, None):
            return
        self.filterRequested.emit(kind, index.data(VALUE_ROLE) or "")

    # --- menus ---

    def contextMenuEvent(self, event) -> None:
        index = self.indexAt(event.pos())
        kind, value = index.data(KIND_ROLE), index.data(VALUE_ROLE)
        menu = QMenu(self)
        if kind == FOLDER:
            menu.addAction(icon("refresh"), "Re-index this folder", lambda: self.reindexRequested.emit(value))
            menu.addAction(icon("remove"), "Remove from library", lambda: self.removeFolderRequested.emit(value))
            menu.addSeparator()
        elif kind == TAG:
            menu.addAction(icon("remove"), f"Delete tag “{value}”", lambda: self.deleteTagRequested.emit(value))
            menu.addSeparator()
        menu.addAction(icon("folder-add"), "Add folder…", self.addFolderRequested.emit)
        menu.addAction(icon("refresh"), "Re-index library", lambda: self.reindexRequested.emit(""))
        menu.exec(event.globalPos())

    # --- drops ---

    def _drop_target(self, event) -> tuple[str | None, QModelIndex]:
        """What a drag at this position would do: ("folders", _), ("tag", entry) or (None, _)."""
        mime = event.mimeData()
        if dropped_folders(mime):
            return "folders", QModelIndex()
        if photo_ids_from_mime(mime) or dropped_photo_files(mime):
            index = self.indexAt(event.position().toPoint())
            if index.isValid() and index.data(KIND_ROLE) in (TAG, NEW_TAG):
                return "tag", index
        return None, QModelIndex()

    def _show_drop(self, index: QModelIndex) -> None:
        if index != self.drop_row:
            self.drop_row = index
            self.viewport().update()

    def dragEnterEvent(self, event) -> None:
        mime = event.mimeData()
        if dropped_folders(mime) or photo_ids_from_mime(mime) or dropped_photo_files(mime):
            event.acceptProposedAction()  # positions are judged in dragMoveEvent
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        action, index = self._drop_target(event)
        self._show_drop(index)
        if action:
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:
        self._show_drop(QModelIndex())

    def dropEvent(self, event) -> None:
        action, index = self._drop_target(event)
        self._show_drop(QModelIndex())
        mime = event.mimeData()
        if action == "folders":
            self.folderDropped.emit(dropped_folders(mime))
        elif action == "tag":
            ids = photo_ids_from_mime(mime)
            name = index.data(VALUE_ROLE) if index.data(KIND_ROLE) == TAG else ""
            self.photosDroppedOnTag.emit(name, ids, [] if ids else dropped_photo_files(mime))
        else:
            event.ignore()
            return
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()


class Sidebar(QWidget):
    """The tree plus the buttons under it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("sidebarPane")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.view = SidebarView(self)
        self.add_button = QPushButton(icon("folder-add"), "Add folder…", self)
        self.add_button.clicked.connect(self.view.addFolderRequested.emit)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(10, 6, 10, 10)
        buttons.addWidget(self.add_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.view, 1)
        layout.addLayout(buttons)

    def minimumSizeHint(self) -> QSize:
        """Never so narrow that names shrink to a few letters: below this the window hides the sidebar
        instead (main_window.py)."""
        margins = self.layout().contentsMargins()
        scrollbar = self.view.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        width = sidebar_min_width(self.view.fontMetrics()) + margins.left() + margins.right() + scrollbar
        return QSize(width, super().minimumSizeHint().height())
