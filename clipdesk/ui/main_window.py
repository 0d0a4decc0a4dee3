"""The main window: search bar on top; sidebar, photo grid and tagging panel side by side; status bar.

On a narrow window (a laptop at 800 x 600) the panels give way rather than force the width: the sidebar
is hidden when it would leave the grid less than GRID_MIN_WIDTH beside an open tagging panel, and comes
back when there is room again (its button in the top bar shows or hides it; showing it where there is no
room closes the tagging panel).

It wires the widgets to the LibraryService and owns the flows that involve several of them: a
sidebar click becomes a query, a query's results fill the grid, indexing progress refreshes the
counts and the results while it runs, and closing waits for the indexer to commit what it has.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QItemSelectionModel, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (QFileDialog, QFrame, QHBoxLayout, QInputDialog, QLabel, QMainWindow, QPushButton,
                               QSlider, QSplitter, QStackedWidget, QToolButton, QVBoxLayout, QWidget)

from clipdesk.settings import load_settings, update_settings
from clipdesk.ui import desktop
from clipdesk.ui.elided_label import ElidedLabel
from clipdesk.ui.icons import app_icon, icon
from clipdesk.ui.library_service import (RANKED_RESULTS, VIDEOS_QUERY, LibraryService, ModelState, ResultSet,
                                         SidebarData, folder_query, like_query, tag_query)
from clipdesk.ui.photo_grid import DEFAULT_CELL, MAX_CELL, MIN_CELL, PhotoGridModel, PhotoGridView
from clipdesk.ui.photo_view import PhotoView
from clipdesk.ui.search_bar import SearchBar
from clipdesk.ui.sidebar import ALL, FOLDER, LABEL_SET, PROBLEMS, TAG, VIDEOS, Sidebar, dropped_folders
from clipdesk.ui.status_bar import StatusBar
from clipdesk.ui.theme import current_theme, style
from clipdesk.ui.thumbnails import ThumbnailLoader
from clipdesk.ui.sample_notice import SampleNotice
from clipdesk.library.sample_library import is_sample_folder
from clipdesk.ui.welcome import WelcomePage

LIVE_REFRESH_MS = 2000  # while indexing, counts and results catch up this often
# The grid's share that the sidebar never takes beside an open tagging panel: three columns of the smallest
# thumbnails and a scroll bar (at 800 px the sidebar gives way; at 1024 the three fit).
GRID_MIN_WIDTH = 3 * MIN_CELL + 24


def preferences_key() -> QKeySequence:
    """The platform's Preferences shortcut (⌘, on macOS), or Ctrl+, where the platform has none (Windows,
    most Linux desktops). Never both: two shortcuts on one key are ambiguous, and neither fires."""
    preferences = QKeySequence(QKeySequence.StandardKey.Preferences)
    return preferences if not preferences.isEmpty() else QKeySequence("Ctrl+,")


class Banner(QFrame):
    """A one-line notice above the grid with an action button (no model installed, for instance)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.icon = QLabel(self)
        self.text = QLabel(self)
        self.text.setWordWrap(True)
        self.button = QPushButton(self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 8, 8)
        layout.addWidget(self.icon)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.button)

    def refresh_icons(self) -> None:
        self.icon.setPixmap(icon("warning", color=self.palette().color(QPalette.ColorRole.WindowText)).pixmap(18, 18))


class PageStack(QStackedWidget):
    """The library page or the welcome page. Only the page shown sets the minimum size: the welcome page's
    height must not make the window taller than a laptop's screen while the grid is shown."""

    def minimumSizeHint(self):
        page = self.currentWidget()
        return page.minimumSizeHint() if page is not None else super().minimumSizeHint()

    def sizeHint(self):
        page = self.currentWidget()
        return page.sizeHint() if page is not None else super().sizeHint()


def initial_size(screen) -> QSize:
    """1280 x 820, or less on a smaller screen: the whole window, frame and title bar included, fits the
    screen's free area (taskbars and panels excluded)."""
    if screen is None:
        return QSize(1280, 820)
    room = screen.availableGeometry()
    return QSize(min(1280, room.width() - 40), min(820, room.height() - 60))


def how_many(count: int, videos: int) -> str:
    """"12 photos", "1 video", "11 photos and 1 video": videos are named only when there are some."""
    photos = count - videos
    parts = [f"{photos:,} photo{'s' if photos != 1 else ''}"] if photos or not videos else []
    parts += [f"{videos:,} video{'s' if videos != 1 else ''}"] if videos else []
    return " and ".join(parts)


class MainWindow(QMainWindow):

    def __init__(self, service: LibraryService | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("clipdesk")
        self.setWindowIcon(app_icon())
        self.resize(initial_size(QGuiApplication.primaryScreen()))
        self.setAcceptDrops(True)
        self.service = service or LibraryService(parent=self)
        if self.service.parent() is None:
            self.service.setParent(self)
        self.loader = ThumbnailLoader(self.service.library, parent=self)
        self.results = ResultSet.empty()
        self.sidebar_data: SidebarData | None = None
        self._closing = False
        self._index_seen = False  # an index has started since the window opened
        self._sidebar_wanted = True  # the user's choice; a narrow window may still hide it (_fit_panels)
        self._first_results = True
        self._model_loaded_once = False
        self._model_name: str | None = None
        self._query_note = ""  # the status bar's note about the shown results' query (words never learned)
        self._banner_kind: str | None = None  # what the banner's button does: "import", "get" or nothing
        self.get_model_dialog = None  # the Get a model dialog while it is open
        self.settings = None  # the Settings dialog while it is open
        self._build()
        self._connect()
        self._live_timer = QTimer(self)
        self._live_timer.setInterval(LIVE_REFRESH_MS)
        self._live_timer.timeout.connect(self._live_refresh)
        self._progress_seen = False
        self.service.load_model()
        self.service.refresh_sidebar()
        self.service.refresh_history()

    # --- building ---

    def _build(self) -> None:
        self.search_bar = SearchBar(self)
        self.tag_button = QToolButton(self)
        self.tag_button.setCheckable(True)
        self.tag_button.setToolTip("Tag with labels: let the model suggest tags from labels you write")
        self.tag_button.setText("Tag with labels")
        self.tag_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.settings_button = QToolButton(self)
        self.settings_button.setToolTip(
            f"Settings ({preferences_key().toString(QKeySequence.SequenceFormat.NativeText)})")
        self.settings_button.setAutoRaise(True)
        self.sidebar_button = QToolButton(self)
        self.sidebar_button.setCheckable(True)
        self.sidebar_button.setChecked(True)
        self.sidebar_button.setAutoRaise(True)
        self.sidebar_button.setToolTip("Show or hide the sidebar (Ctrl+B)")
        top = QFrame(self)
        top.setObjectName("topBar")
        top_layout = QHBoxLayout(top)
        top_layout.setContentsMargins(14, 10, 12, 8)
        top_layout.setSpacing(10)
        logo = QLabel(top)
        logo.setPixmap(app_icon().pixmap(30, 30))
        top_layout.addWidget(self.sidebar_button, 0, Qt.AlignmentFlag.AlignTop)
        top_layout.addWidget(logo, 0, Qt.AlignmentFlag.AlignTop)
        top_layout.addWidget(self.search_bar, 1)
        top_layout.addWidget(self.tag_button, 0, Qt.AlignmentFlag.AlignTop)
        top_layout.addWidget(self.settings_button, 0, Qt.AlignmentFlag.AlignTop)

        self.sidebar = Sidebar(self)
        self.grid_model = PhotoGridModel(self.loader, self)
        self.grid = PhotoGridView(self.grid_model, self)
        self.banner = Banner(self)
        self.banner.hide()
        self.sample_notice = SampleNotice(self)
        self.view_title = ElidedLabel("All photos", self)
        self.view_title.setObjectName("viewTitle")
        self.view_subtitle = QLabel(self)
        self.view_subtitle.setObjectName("viewSubtitle")
        self.zoom = QSlider(Qt.Orientation.Horizontal, self)
        self.zoom.setRange(MIN_CELL, MAX_CELL)
        self.zoom.setValue(DEFAULT_CELL)
        self.zoom.setMinimumWidth(60)
        self.zoom.setMaximumWidth(120)
        self.zoom.setToolTip("Thumbnail size (Ctrl+wheel)")
        header_widget = QWidget(self)
        header = QHBoxLayout(header_widget)
        header.setContentsMargins(16, 12, 16, 4)
        header.addWidget(self.view_title)
        header.addSpacing(8)
        header.addWidget(self.view_subtitle, 0, Qt.AlignmentFlag.AlignBaseline)
        header.addStretch(1)
        header.addWidget(self.zoom)
        library_page = QWidget(self)
        library_page.setAutoFillBackground(True)
        library_page.setBackgroundRole(QPalette.ColorRole.Base)
        page = QVBoxLayout(library_page)
        page.setContentsMargins(0, 0, 0, 0)
        page.setSpacing(0)
        banner_box = QVBoxLayout()
        banner_box.setContentsMargins(12, 10, 12, 0)
        banner_box.addWidget(self.banner)
        banner_box.addWidget(self.sample_notice)
        page.addLayout(banner_box)
        page.addWidget(header_widget)
        page.addWidget(self.grid, 1)

        self.welcome = WelcomePage(self)
        self.pages = PageStack(self)
        self.pages.currentChanged.connect(lambda _: self.pages.updateGeometry())
        self.pages.addWidget(library_page)
        self.pages.addWidget(self.welcome)
        self.library_page = library_page

        self.tag_panel = self._make_tag_panel()
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(self.pages)
        if self.tag_panel is not None:
            self.splitter.addWidget(self.tag_panel)
            self.tag_panel.hide()
        else:
            self.tag_button.hide()
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(1, False)
        self.splitter.setCollapsible(0, False)  # hidden by _fit_panels, never squeezed to a sliver

        self.splitter.setSizes([250, 900, 340])
        self.splitter.setHandleWidth(1)

        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(top)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)
        self.status = StatusBar(self)
        self.setStatusBar(self.status)
        self.photo_view = PhotoView(self.service, self.grid_model, self)
        self._build_menus()
        self.grid.empty_text = "Loading…"
        # The stylesheet goes on everything but the grid (see theme.py).
        for widget in (top, self.sidebar, self.banner, header_widget, self.welcome, self.status, self.photo_view):
            style(widget)
        if self.tag_panel is not None:
            style(self.tag_panel)
        self._refresh_icons()

    def _build_menus(self) -> None:
        """Edit → Undo and Redo: every change to tags and folders goes back (library/history.py), after a
        restart too. In a text field the same keys undo typing (the field takes them first)."""
        edit = self.menuBar().addMenu("&Edit")
        self.undo_action = QAction("&Undo", self)
        self.undo_action.setShortcuts(QKeySequence.StandardKey.Undo)
        self.undo_action.triggered.connect(lambda: self.service.undo())
        self.redo_action = QAction("&Redo", self)
        self.redo_action.setShortcuts(QKeySequence.StandardKey.Redo)  # Ctrl+Shift+Z (and Ctrl+Y on Windows)
        self.redo_action.triggered.connect(lambda: self.service.undo(redo=True))
        edit.addAction(self.undo_action)
        edit.addAction(self.redo_action)
        self._history_changed(None, None)

        # View: how the grid shows photos, remembered in the settings file.
        settings = load_settings()
        view = self.menuBar().addMenu("&View")
        self.justified_action = QAction("&Justified rows (whole photos)", self)
        self.justified_action.setCheckable(True)
        self.justified_action.setToolTip("Photos uncropped at their own shape, in rows that fill the width; "
                                         "unchecked: square thumbnails")
        self.justified_action.setChecked(bool(settings.get("justified_grid", False)))
        self.justified_action.toggled.connect(self._set_justified)
        self.scores_action = QAction("Show &scores on tiles", self)
        self.scores_action.setCheckable(True)
        self.scores_action.setToolTip("The similarity score on every photo of a search, not only under the pointer")
        self.scores_action.setChecked(bool(settings.get("scores_on_tiles", False)))
        self.scores_action.toggled.connect(self._set_show_scores)
        view.addAction(self.justified_action)
        view.addAction(self.scores_action)
        self.grid.set_justified(self.justified_action.isChecked())
        self.grid.set_show_scores(self.scores_action.isChecked())

    def _set_justified(self, justified: bool) -> None:
        self.grid.set_justified(justified)
        update_settings(justified_grid=justified)

    def _set_show_scores(self, shown: bool) -> None:
        self.grid.set_show_scores(shown)
        update_settings(scores_on_tiles=shown)

    def _history_changed(self, undo: str | None, redo: str | None) -> None:
        for action, verb, step in ((self.undo_action, "&Undo", undo), (self.redo_action, "&Redo", redo)):
            action.setText(f"{verb} {step.replace('&', '&&')}" if step else verb)  # a tag's "&" is no mnemonic
            action.setEnabled(step is not None)

    def _make_tag_panel(self):
        """The zero-shot tagging panel, when the tagging core is part of this build."""
        try:
            from clipdesk.ui.tagging_panel import TaggingPanel
        except ImportError:
            return None
        return TaggingPanel(self.service, self)

    def _connect(self) -> None:
        service = self.service
        service.modelChanged.connect(self._model_changed)
        service.resultsReady.connect(self._show_results)
        service.searchFailed.connect(self._search_failed)
        service.sidebarReady.connect(self._sidebar_ready)
        service.indexStarted.connect(self._index_started)
        service.indexProgress.connect(self._index_progress)
        service.indexFinished.connect(self._index_finished)
        service.indexFailed.connect(self._index_failed)
        service.libraryChanged.connect(self._library_changed)
        service.tagsChanged.connect(self._library_changed)
        service.historyChanged.connect(self._history_changed)
        service.message.connect(self.status.note)
        service.error.connect(self.status.error)

        self.search_bar.queryChanged.connect(self._run_query)
        self.search_bar.leaveDown.connect(self._focus_grid)
        self.grid.openRequested.connect(self._open)
        self.grid.previewRequested.connect(self.photo_view.show_row)
        self.grid.findSimilarRequested.connect(self.find_similar)
        self.grid.showInFolderRequested.connect(self._show_in_folder)
        self.grid.tagRequested.connect(self.tag_photos)
        self.grid.untagRequested.connect(self.untag_photos)
        self.grid.deletePressed.connect(self._delete_pressed)
        self.grid.zoomChanged.connect(self.zoom.setValue)
        self.zoom.valueChanged.connect(self.grid.set_zoom)
        self.grid.selectionModel().selectionChanged.connect(self._selection_changed)
        self.photo_view.findSimilarRequested.connect(self.find_similar)
        self.photo_view.openRequested.connect(self._open)
        self.photo_view.showInFolderRequested.connect(self._show_in_folder)
        self.photo_view.rowChanged.connect(self._follow_preview)

        view = self.sidebar.view
        view.filterRequested.connect(self._sidebar_filter)
        view.folderDropped.connect(self.add_folders)
        view.photosDroppedOnTag.connect(self._photos_dropped_on_tag)
        view.removeFolderRequested.connect(self._remove_folder)
        view.reindexRequested.connect(lambda folder: self.reindex([folder] if folder else None))
        view.addFolderRequested.connect(self.choose_folder)
        view.deleteTagRequested.connect(self._delete_tag)

        self.welcome.addFolderRequested.connect(self.choose_folder)
        self.welcome.sampleRequested.connect(lambda folder: self.add_folders([folder]))
        self.welcome.importModelRequested.connect(lambda: self.open_settings(import_model=True))
        self.welcome.getModelRequested.connect(self.open_get_model)
        self.banner.button.clicked.connect(self._banner_clicked)
        self.sample_notice.showSampleChanged.connect(self._show_sample)
        self.sample_notice.removeRequested.connect(self._remove_sample)
        self.status.cancelRequested.connect(self.service.cancel_index)
        self.status.modelClicked.connect(self.open_settings)
        self.settings_button.clicked.connect(self.open_settings)
        self.tag_button.toggled.connect(self._toggle_tag_panel)
        self.sidebar_button.toggled.connect(self._toggle_sidebar)
        if self.tag_panel is not None:
            self.tag_panel.selection_ids = self.grid.selected_ids
            self.tag_panel.photoActivated.connect(self._show_photo)
            self.tag_panel.closeRequested.connect(lambda: self.tag_button.setChecked(False))
        theme = current_theme()
        if theme is not None:
            theme.changed.connect(self._refresh_icons)

        shortcuts = [
            (QKeySequence.StandardKey.Find, self.search_bar.focus),
            (QKeySequence("Ctrl+L"), self.search_bar.focus),
            (QKeySequence.StandardKey.SelectAll, self._select_all),
            (preferences_key(), self.open_settings),
            (QKeySequence("Ctrl+O"), self.choose_folder),
            (QKeySequence.StandardKey.Refresh, self.reindex),
            (QKeySequence("Ctrl+T"), lambda: self.tag_button.toggle()),
            (QKeySequence("Ctrl+B"), lambda: self.sidebar_button.toggle()),
        ]
        for sequence, slot in shortcuts:
            shortcut = QShortcut(sequence, self)
            shortcut.activated.connect(slot)

    def _refresh_icons(self) -> None:
        self.settings_button.setIcon(icon("settings"))
        self.tag_button.setIcon(icon("sparkle"))
        self.sidebar_button.setIcon(icon("sidebar"))
        self.search_bar.field.search_action.setIcon(icon("search", QPalette.ColorRole.PlaceholderText))
        self.sidebar.add_button.setIcon(icon("folder-add"))
        self.banner.refresh_icons()
        if self.tag_panel is not None:
            self.tag_panel.refresh_icons()
        self.status.set_model(self.service.model_state)
        self.grid.viewport().update()
        self.sidebar.view.viewport().update()

    # --- model ---

    def _model_changed(self, state: ModelState) -> None:
        first_load, previous = not self._model_loaded_once, self._model_name
        self._model_loaded_once, self._model_name = True, state.name
        self.status.set_model(state)
        self.welcome.set_model(state)
        self._update_banner()
        self._run_query(self.search_bar.text())
        if state.searching_with:
            self.status.note(f"Searching with {state.searching_with} until {state.name} has indexed your photos")
        # A model chosen or imported while the app runs: index the library with it (only photos it has
        # not embedded yet are processed); search stays on the previous model until that is done.
        if state.name and state.name != previous and not first_load and self.sidebar_data and self.sidebar_data.folders:
            self.service.index(None)

    def _update_banner(self) -> None:
        """No model: say so, with an import button. The bundled emoji model over a library of photos: say it
        knows emoji and icons, not photographs, with a button that gets the recommended photo model."""
        state = self.service.model_state if self._model_loaded_once else None
        holds_photos = self._holds_photos()
        if state is not None and not state.name:
            self._banner_kind = "import"
            self.banner.text.setText("<b>No model is installed.</b> clipdesk needs a CLIP model to index and search "
                                     "photos. Import a CLIP checkpoint or a clipdesk model package to start.")
            self.banner.button.setText("Import a model…")
            self.banner.show()
        elif state is not None and state.knows_no_photos and holds_photos:
            from clipdesk.ui.get_model_dialog import get_photo_model_text

            self._banner_kind = "get"
            self.banner.text.setText(f"<b>{state.name}</b> knows emoji and icons, not photographs.")
            self.banner.button.setText(get_photo_model_text())
            self.banner.show()
        else:
            self._banner_kind = None
            self.banner.hide()

    def _holds_photos(self) -> bool:
        """Whether the library has photos of the user's: the sample library's emoji and icons do not count."""
        if not self.sidebar_data:
            return False
        return any(count for folder, count in self.sidebar_data.folders if not is_sample_folder(folder.path))

    def _show_sample(self, show: bool) -> None:
        self.service.show_sample = show
        self._run_query(self.results.query)

    def _remove_sample(self) -> None:
        if self.service.sample_apart is not None:
            self._remove_folder(self.service.sample_apart)

    def _banner_clicked(self) -> None:
        if self._banner_kind == "get":
            self.open_get_model()
        else:
            self.open_settings(import_model=True)

    # --- querying ---

    def _run_query(self, text: str) -> None:
        self.service.search(text)

    def _show_results(self, results: ResultSet) -> None:
        same_query = results.query == self.results.query and not self._first_results
        keep = self._grid_state() if same_query else None
        self.results = results
        self._first_results = False
        self.grid.tag_view = results.tag_view
        self.grid_model.set_results(results)
        if keep is not None:
            self._restore_grid_state(*keep)
        else:
            self.grid.scrollToTop()
        self._update_header()
        self.search_bar.show_error(None)
        self._sync_sidebar_selection()
        self._show_query_note(results.note)
        self.sample_notice.show_for(results.sample)

    def _show_query_note(self, note: str) -> None:
        """A note about a query lasts as long as its results are shown, not over the next query's."""
        if note:
            self.status.note(note)
        elif self._query_note and self.status.note_label.text() == self._query_note:
            self.status.note("", 0)
        self._query_note = note

    def _search_failed(self, text: str, message: str) -> None:
        if text == self.search_bar.text().strip():
            self.search_bar.show_error(message)

    def _update_header(self) -> None:
        results, count = self.results, len(self.results)
        if results.tag_view:
            title = f"Tag: {results.tag_view}"
        elif results.folder_view:
            title = os.path.basename(results.folder_view.rstrip(os.sep)) or results.folder_view
        elif not results.query:
            title = "All photos"
        elif results.query.strip() == VIDEOS_QUERY:
            title = "Videos"
        elif results.query.startswith("like:"):
            title = "Similar photos"
        elif '"' in results.query:
            title = results.query  # its own quotes are part of it: typographic ones around them would double them
        else:
            title = f"“{results.query}”"
        self.view_title.setText(title)
        amount = how_many(count, len(results.videos))
        if results.scores is None:
            subtitle = amount
        else:  # a ranked query shows the best RANKED_RESULTS of the library
            subtitle = f"{'best ' if count == RANKED_RESULTS else ''}{amount}, most similar first"
        self.view_subtitle.setText(subtitle)
        self.grid.empty_text = self._empty_text()
        self._selection_changed()

    def _empty_text(self) -> str:
        listing = not self.results.query or self.results.tag_view or self.results.folder_view
        if not self.service.has_model and not listing:
            return "No model is installed yet, so photos cannot be searched."
        tag = self.results.tag_view
        if tag and self.sidebar_data:
            suggested = next((t.suggested for t in self.sidebar_data.tags if t.name.lower() == tag.lower()), 0)
            if suggested:
                return (f"No photo has the tag “{tag}” yet: it is only suggested for {suggested:,}. Review the "
                        "suggestions in Tag with labels (Ctrl+T) to accept them.")
        if self.results.query:
            return "No photos match this search."
        if self.service.indexing:
            return "Indexing… photos appear here as they are indexed."
        if not self.service.has_model and self.sidebar_data and self.sidebar_data.folders:
            return "No photos indexed yet: the library's folders are indexed once a model is installed."
        return "No photos in the library yet. Add a folder, or drop one on this window."

    def _sync_sidebar_selection(self) -> None:
        results = self.results
        if results.tag_view:
            self.sidebar.view.show_selection(TAG, results.tag_view)
        elif results.folder_view:
            self.sidebar.view.show_selection(FOLDER, os.path.abspath(os.path.expanduser(results.folder_view)))
        elif not results.query:
            self.sidebar.view.show_selection(ALL)
        elif results.query.strip() == VIDEOS_QUERY:
            self.sidebar.view.show_selection(VIDEOS)
        else:
            self.sidebar.view.show_selection(None)

    def find_similar(self, path: str) -> None:
        self.search_bar.set_query(like_query(path))

    # --- grid state across live refreshes ---

    def _grid_state(self):
        current = self.grid.currentIndex()
        current_id = self.grid_model.photo_id(current.row()) if current.isValid() else None
        return self.grid.selected_ids(), current_id, self.grid.verticalScrollBar().value()

    def _restore_grid_state(self, ids, current_id, scroll) -> None:
        self.grid.select_ids(ids, current_id)
        self.grid.verticalScrollBar().setValue(scroll)

    def _selection_changed(self, *_) -> None:
        count = self.grid.selected_count()
        if self.tag_panel is not None:
            self.tag_panel.set_selection_count(count)
        if count > 1:
            self.status.note(f"{count:,} photos selected", 0)
        elif self.status.note_label.text().endswith("selected"):
            self.status.note("", 0)

    def _select_all(self) -> None:
        self.grid.setFocus()
        self.grid.selectAll()

    def _focus_grid(self) -> None:
        self.grid.setFocus()
        if not self.grid.currentIndex().isValid() and self.grid_model.rowCount():
            self.grid.setCurrentIndex(self.grid_model.index(0))

    def _show_photo(self, photo_id: int) -> None:
        """Select a photo in the grid (from the tagging panel), or say it is not among the results."""
        row = self.grid_model.row_of(photo_id)
        if row is None:
            self.status.note("That photo is not in the current view; clear the search to see every photo")
            return
        self.grid.select_ids([photo_id], photo_id)
        self.grid.scrollTo(self.grid_model.index(row))

    def _follow_preview(self, row: int) -> None:
        index = self.grid_model.index(row)
        self.grid.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.grid.scrollTo(index)

    def _open(self, paths: list[str]) -> None:
        opened, tried = desktop.open_paths(paths), min(len(paths), desktop.MAX_OPEN)
        if opened < tried:
            self.status.error(f"Could not open {tried - opened:,} photo{'s' if tried - opened != 1 else ''}: "
                              f"{desktop.NO_OPENER}")
        elif opened < len(paths):
            self.status.note(f"Opened the first {opened} of {len(paths):,} photos")

    def _show_in_folder(self, path: str) -> None:
        desktop.show_in_folder(path, failed=self.status.error)

    # --- sidebar ---

    def _sidebar_ready(self, data: SidebarData) -> None:
        first = self.sidebar_data is None
        self.sidebar_data = data
        self._update_banner()
        self.sidebar.view.populate(data)
        self.grid.tag_names = data.tag_names
        confirmed = [tag for tag in data.tags if tag.photos and not tag.from_files]
        self.search_bar.set_tag_example(max(confirmed, key=lambda t: t.photos).name if confirmed else None)
        self.photo_view.set_tag_names(data.tag_names)
        if self.tag_panel is not None:
            self.tag_panel.set_label_sets(data.label_sets)
        self._sync_sidebar_selection()
        welcome = not data.folders and not self.service.indexing
        self.pages.setCurrentWidget(self.welcome if welcome else self.library_page)
        if first and data.folders and self.service.has_model and data.total == 0 and not self._index_seen \
                and not self.service.indexing:
            # Folders added while no model was installed: index them now. Not when this window has started
            # an index already (folders added before this first count arrived): that would index twice.
            self.service.index(None)

    def _sidebar_filter(self, kind: str, value: str) -> None:
        if kind == ALL:
            self.search_bar.set_query("")
        elif kind == VIDEOS:
            self.search_bar.set_query(VIDEOS_QUERY)
        elif kind == FOLDER:
            self.search_bar.set_query(folder_query(value))
        elif kind == TAG:
            self.search_bar.set_query(tag_query(value))
        elif kind == PROBLEMS:
            self._show_problems()
        elif kind == LABEL_SET and self.tag_panel is not None:
            self.tag_button.setChecked(True)
            self.tag_panel.choose_label_set(value)

    def _show_problems(self) -> None:
        from clipdesk.ui.problems_dialog import ProblemsDialog

        self.service.errors(on_done=lambda records: ProblemsDialog(records, self).exec())
        self._sync_sidebar_selection()

    def _library_changed(self) -> None:
        self.service.refresh_sidebar()
        self.service.refresh_history()
        self._run_query(self.search_bar.text())

    # --- folders and indexing ---

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of photos", os.path.expanduser("~"))
        if folder:
            self.add_folders([folder])

    def add_folders(self, folders: list[str]) -> None:
        if not folders:
            return
        self.pages.setCurrentWidget(self.library_page)
        self.service.add_folders(folders)

    def reindex(self, folders: list[str] | None = None) -> None:
        """Pick up new, changed and removed photos in some folders, or in the whole library."""
        if folders is None and not (self.sidebar_data and self.sidebar_data.folders):
            self.status.note("The library has no folders yet: add one first (Ctrl+O)")
            return
        self.service.index(folders)

    def _remove_folder(self, path: str) -> None:
        # No confirmation: Edit → Undo brings the folder back with its tags (history.py).
        self.service.remove_folder(path)

    def _index_started(self, folders: list[str]) -> None:
        self._index_seen = True
        self.pages.setCurrentWidget(self.library_page)
        self.status.show_indexing(True)
        self.status.index_progress("scanning", 0, -1, 0.0)
        where = ", ".join(folders) if folders else "the library"
        self.status.note(f"Indexing {where}")
        self._live_timer.start()
        self.grid.empty_text = self._empty_text()

    def _index_progress(self, stage: str, done: int, total: int, rate: float) -> None:
        self._progress_seen = True
        self.status.index_progress(stage, done, total, rate)

    def _live_refresh(self) -> None:
        if self._progress_seen:
            self._progress_seen = False
            self.service.refresh_sidebar()
            self._run_query(self.results.query)

    def _index_finished(self, summary) -> None:
        self._live_timer.stop()
        self.status.show_indexing(False)
        parts = [f"{summary.scanned:,} file{'s' if summary.scanned != 1 else ''}"]
        if summary.indexed:
            parts.append(f"{summary.indexed:,} newly indexed")
        if summary.moved:
            parts.append(f"{summary.moved:,} moved")
        if summary.removed:
            parts.append(f"{summary.removed:,} gone")
        if summary.failed:
            parts.append(f"{summary.failed:,} could not be read")
        if summary.videos_skipped:  # an install without PyAV on a computer without FFmpeg (video_frames.py)
            count = summary.videos_skipped
            parts.append(f"{count:,} video{'s' if count != 1 else ''} skipped: install FFmpeg to index videos")
        lead = "Indexing cancelled (run it again to go on): " if summary.cancelled else "Indexed: "
        self.status.note(lead + ", ".join(parts), 0 if summary.failed or summary.videos_skipped else 12000)
        for problem in summary.folder_problems[:1]:
            self.status.error(problem)
        if self._closing:
            self.close()
            return
        self._library_changed()

    def _index_failed(self, message: str) -> None:
        self._live_timer.stop()
        self.status.show_indexing(False)
        self.status.error(message)
        if self._closing:
            self.close()
            return
        self._library_changed()

    # --- tagging ---

    def tag_photos(self, ids: list[int], name: str, paths: list[str] | None = None) -> None:
        if not name:
            name, ok = QInputDialog.getText(self, "New tag", "Tag name:")
            name = name.strip()
            if not ok or not name:
                return
        self.service.tag_photos(name, ids, paths or [])

    def untag_photos(self, ids: list[int], name: str) -> None:
        if ids and name:
            self.service.untag_photos(name, ids)

    def _photos_dropped_on_tag(self, name: str, ids: list[int], paths: list[str]) -> None:
        self.tag_photos(ids, name, paths)

    def _delete_pressed(self) -> None:
        if self.results.tag_view:
            self.untag_photos(self.grid.selected_ids(), self.results.tag_view)
        else:
            self.status.note("Delete removes a tag from photos while a tag is shown; open a tag in the sidebar")

    def _delete_tag(self, name: str) -> None:
        self.service.delete_tag(name)  # no confirmation: Edit → Undo brings it back

    def _toggle_tag_panel(self, shown: bool) -> None:
        if self.tag_panel is not None:
            self._fit_panels()  # before the panel shows: a sidebar left beside it would widen the window
            self.tag_panel.setVisible(shown)

    # --- panels on a narrow window ---

    def _panels_fit(self, sidebar: bool, tag_panel: bool) -> bool:
        needed = max(GRID_MIN_WIDTH, self.pages.minimumSizeHint().width()) + self.splitter.handleWidth() * 2
        if sidebar:
            needed += self.sidebar.minimumSizeHint().width()
        if tag_panel and self.tag_panel is not None:
            needed += max(self.tag_panel.minimumWidth(), self.tag_panel.minimumSizeHint().width())
        return self.splitter.width() >= needed

    def _fit_panels(self) -> None:
        """Show the sidebar when the user wants it and it leaves the grid room beside the open panels."""
        tag_panel = self.tag_panel is not None and self.tag_button.isChecked()
        shown = self._sidebar_wanted and self._panels_fit(True, tag_panel)
        if shown != self.sidebar.isVisible() or shown != self.sidebar_button.isChecked():
            self.sidebar.setVisible(shown)
            self.sidebar_button.blockSignals(True)
            self.sidebar_button.setChecked(shown)
            self.sidebar_button.blockSignals(False)

    def _toggle_sidebar(self, shown: bool) -> None:
        self._sidebar_wanted = shown
        if shown and self.tag_button.isChecked() and not self._panels_fit(True, True):
            self.tag_button.setChecked(False)  # no room for both: the panel asked for last gives way
        self._fit_panels()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_panels()
        # The splitter takes its new width when the layout runs, after this event: the first resize (at
        # show) would otherwise leave the sidebar hidden in a window wide enough for it.
        QTimer.singleShot(0, self._fit_panels)

    # --- settings ---

    def settings_dialog(self):
        """The settings dialog, wired to this window: a new default model or device reloads the model."""
        from clipdesk.ui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.service.library.path, self)
        dialog.models.modelsChanged.connect(self.service.load_model)
        dialog.device.deviceChanged.connect(self._device_changed)
        return dialog

    def open_settings(self, import_model: bool = False) -> None:
        """Settings, window-modal (open(), not exec(): the window's event loop keeps running)."""
        if self.settings is None:
            self.settings = self.settings_dialog()
            self.settings.finished.connect(lambda _result, d=self.settings: self._settings_closed(d))
            self.settings.open()
        if import_model:
            self.settings.tabs.setCurrentWidget(self.settings.models)
        self.settings.raise_()

    def _settings_closed(self, dialog) -> None:
        if self.settings is dialog:
            self.settings = None
        dialog.models.shutdown()
        dialog.deleteLater()

    def open_get_model(self, select: str | None = None) -> None:
        """The Get a model dialog (the catalog's recommended model selected unless `select` names another),
        window-modal; a model it makes the default is loaded, and the library is indexed with it."""
        from clipdesk.ui.get_model_dialog import GetModelDialog

        if self.get_model_dialog is not None:
            self.get_model_dialog.raise_()
            return
        dialog = GetModelDialog(self, select=select)
        dialog.modelInstalled.connect(self._model_got)
        dialog.finished.connect(lambda _result, d=dialog: self._get_model_closed(d))
        self.get_model_dialog = dialog
        dialog.open()

    def _model_got(self, _name: str, made_default: bool) -> None:
        if made_default:
            self.service.load_model()

    def _get_model_closed(self, dialog) -> None:
        if self.get_model_dialog is dialog:
            self.get_model_dialog = None
        dialog.shutdown()
        dialog.deleteLater()

    def _device_changed(self, _device: str) -> None:
        self.service.load_model()

    # --- drops anywhere on the window: folders ---

    def dragEnterEvent(self, event) -> None:
        if dropped_folders(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        folders = dropped_folders(event.mimeData())
        if folders:
            event.acceptProposedAction()
            self.add_folders(folders)

    # --- closing ---

    def closeEvent(self, event) -> None:
        if self.service.indexing:
            # Stop the indexer and close once it has committed its last batch: nothing indexed is lost,
            # and the next run goes on from there.
            if not self._closing:
                self._closing = True
                self.status.note("Stopping indexing before closing…", 0)
                self.service.cancel_index()
            event.ignore()
            return
        if self.get_model_dialog is not None:  # a download stops; its part files stay for a resume
            self.get_model_dialog.shutdown()
        if self.settings is not None:  # a running import is stopped
            self.settings.models.shutdown()
        self.photo_view.close()
        self.photo_view.shutdown()
        if self.tag_panel is not None:
            self.tag_panel.shutdown()
        self.loader.stop()
        self.service.shutdown()
        super().closeEvent(event)
