"""The zero-shot tagging panel: labels in, suggestions out, grouped by label, to accept or reject.

The user writes labels (or picks a saved label set) and runs them over the whole library or the
selected photos. The model picks the best label for each photo, or "none of these" when no label
describes it better than a generic caption (tagging/calibration.py). Suggestions are listed under
their label, most confident first; each can be accepted (it becomes the user's tag) or rejected (it
is not suggested again), one by one or all those above a confidence threshold.

A run stores its suggestions (the sidebar counts them as "+N"), to review now or later; a run over
a selection scores only those photos and replaces only their suggestions.

On a short window (a laptop's 600 px) the list keeps room for MIN_LIST_ROWS suggestions: the help text
under the title gives way (the ? beside the title shows it again), never cut off.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import replace

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QFont, QIcon, QImage, QPalette, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QButtonGroup, QComboBox, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QRadioButton, QSlider, QStyledItemDelegate,
                               QToolButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from clipdesk.errors import ClipdeskError
from clipdesk.library.pathnames import display_path
from clipdesk.tagging.label_sets import LabelSet
from clipdesk.tagging.prompts import parse_labels
from clipdesk.tagging.suggest import APPLIED, DECIDED, NONE, SUGGESTED
from clipdesk.ui.icons import icon
from clipdesk.ui.library_service import LibraryService
from clipdesk.ui.thumbnails import ThumbnailLoader

NEW_SET = "New label set…"
SHOWN_PER_LABEL = 300  # rows listed under a label; the threshold buttons act on all of them
THUMB = 40
MIN_LIST_ROWS = 4  # suggestion rows the list keeps in view before the help text gives way
PHOTO_ID_ROLE = Qt.ItemDataRole.UserRole + 1
LABEL_ROLE = Qt.ItemDataRole.UserRole + 2
CONFIDENCE_ROLE = Qt.ItemDataRole.UserRole + 3


def model_name(key: str) -> str:
    """A model's name from its embedding key ("name@digest", store.embedding_model_key)."""
    return key.split("@", 1)[0]


class SuggestionDelegate(QStyledItemDelegate):
    """Asks for a suggestion's thumbnail when its row is painted: rows scrolled into view load first."""

    def __init__(self, panel: "TaggingPanel"):
        super().__init__(panel.tree)
        self.panel = panel

    def paint(self, painter, option, index) -> None:
        photo_id = index.data(PHOTO_ID_ROLE)
        if photo_id is not None:
            self.panel.want_thumbnail(int(photo_id))
        super().paint(painter, option, index)


class TaggingPanel(QWidget):
    photoActivated = Signal(int)  # a suggestion was clicked: show that photo
    closeRequested = Signal()

    def __init__(self, service: LibraryService, parent=None):
        super().__init__(parent)
        self.setObjectName("tagPanel")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.setMinimumWidth(300)
        self.service = service
        self.selection_ids = lambda: []  # the main window points this at the grid's selection
        self.label_sets: list[LabelSet] = []
        self.current_set: LabelSet | None = None
        self.pending: dict[str, dict[int, float]] = {}  # label -> photo id -> confidence, not yet reviewed
        self._items: dict[int, list[QTreeWidgetItem]] = defaultdict(list)
        self._requested: set[int] = set()
        self._progress = None
        # What the last run of the current set found besides suggestions (None: not run since it was chosen).
        self._decided: dict[str, int] = {}
        self._none: int | None = None
        self._generation = 0  # bumped by every local edit: a list read from the library before it is stale
        self.loader = ThumbnailLoader(service.library, threads=1, parent=self)
        self.loader.loaded.connect(self._thumbnail)
        self._build()
        service.labelRunProgress.connect(self._run_progress)
        service.labelRunFinished.connect(self._run_finished)
        service.labelRunFailed.connect(self._run_failed)
        service.tagsChanged.connect(self.reload)
        service.modelChanged.connect(self.reload)

    # --- building ---

    def _build(self) -> None:
        self.title_icon = QLabel(self)
        title = QLabel("Tag with labels", self)
        title.setObjectName("panelTitle")
        close = QToolButton(self)
        close.setAutoRaise(True)
        close.setIcon(icon("close"))
        close.setToolTip("Close the panel (Ctrl+T)")
        close.clicked.connect(self.closeRequested.emit)
        self.close_button = close
        intro = QLabel("Write the labels to choose from. For each photo the model suggests the label that fits "
                       "best, or “none of these”. Review the suggestions, then accept or reject them.", self)
        intro.setWordWrap(True)
        intro.setObjectName("muted")
        self.intro = intro
        self.help_button = QToolButton(self)
        self.help_button.setAutoRaise(True)
        self.help_button.setText("?")
        self.help_button.setCheckable(True)
        self.help_button.setChecked(True)
        self.help_button.setToolTip(intro.text())
        self.help_button.toggled.connect(self._help_toggled)
        self._help_wanted = True  # the user's choice; a short panel hides the text anyway (_fit_height)
        header = QHBoxLayout()
        header.addWidget(self.title_icon)
        header.addWidget(title, 1)
        header.addWidget(self.help_button)
        header.addWidget(close)

        self.set_box = QComboBox(self)
        self.set_box.currentIndexChanged.connect(self._set_chosen)
        self.name_field = QLineEdit(self)
        self.name_field.setPlaceholderText("Name of the new label set, e.g. Pets")
        self.labels_field = QLineEdit(self)
        self.labels_field.setPlaceholderText("Labels, separated by commas: cat, dog, bird")
        self.labels_field.returnPressed.connect(self.run)
        self.scope_library = QRadioButton("Whole library", self)
        self.scope_selection = QRadioButton("Selected photos", self)
        self.scope_library.setChecked(True)
        scope_group = QButtonGroup(self)
        scope_group.addButton(self.scope_library)
        scope_group.addButton(self.scope_selection)
        scope = QHBoxLayout()
        scope.addWidget(self.scope_library)
        scope.addWidget(self.scope_selection)
        scope.addStretch(1)
        self.run_button = QPushButton("Suggest tags", self)
        self.run_button.setObjectName("primary")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_button, 1)
        run_row.addWidget(self.cancel_button)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(False)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setObjectName("muted")
        self.status.hide()  # until there is something to say (_say)

        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Suggestion", "Confidence"])
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setIconSize(QSize(THUMB, THUMB))
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # a file name keeps its end and extension
        self.tree.setItemDelegateForColumn(0, SuggestionDelegate(self))
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(False)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.tree.itemClicked.connect(self._clicked)

        self.threshold = QSlider(Qt.Orientation.Horizontal, self)
        self.threshold.setRange(0, 100)
        self.threshold.setValue(70)
        self.threshold.setToolTip("Threshold: the button beside accepts every suggestion at or above it")
        self.threshold.valueChanged.connect(self._update_buttons)
        self.accept_above_button = QPushButton(self)
        self.accept_above_button.clicked.connect(self.accept_above)
        threshold_row = QHBoxLayout()  # one row, so that a short window leaves the list its rows
        threshold_row.addWidget(self.threshold, 1)
        threshold_row.addWidget(self.accept_above_button)
        self.accept_button = QPushButton(icon("check"), "Accept", self)
        self.accept_button.setToolTip("The selected suggestions become tags")
        self.accept_button.clicked.connect(lambda: self.review_selected(True))
        self.reject_button = QPushButton(icon("close"), "Reject", self)
        self.reject_button.setToolTip("Drop the selected suggestions; they are not suggested again")
        self.reject_button.clicked.connect(lambda: self.review_selected(False))
        review = QHBoxLayout()
        review.addWidget(self.accept_button)
        review.addWidget(self.reject_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(6)
        layout.addLayout(header)
        layout.addWidget(intro)
        layout.addWidget(self.set_box)
        layout.addWidget(self.name_field)
        layout.addWidget(self.labels_field)
        layout.addLayout(scope)
        layout.addLayout(run_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.tree, 1)
        layout.addLayout(threshold_row)
        layout.addLayout(review)
        self._show_running(False)
        self.set_label_sets([])
        self._update_buttons()

    def set_selection_count(self, count: int) -> None:
        self.scope_selection.setText(f"Selected photos ({count:,})" if count else "Selected photos")

    def refresh_icons(self) -> None:
        self.title_icon.setPixmap(icon("sparkle", QPalette.ColorRole.Highlight).pixmap(18, 18))
        self.close_button.setIcon(icon("close"))

    # --- label sets ---

    def set_label_sets(self, sets: list[LabelSet]) -> None:
        """The saved label sets, offered in the box (the current choice is kept). A panel still on "New label
        set…" with nothing typed (as after a start) turns to the newest saved set."""
        current = self.set_box.currentText()
        untouched = current in (NEW_SET, "") and not self.labels_field.text().strip() \
            and not self.name_field.text().strip()
        if untouched and sets:
            current = max(sets, key=lambda s: s.created_at).name
        self.label_sets = sets
        if self.current_set is not None:  # the same set, as the library has it now (its last run's model)
            self.current_set = next((s for s in sets if s.name == self.current_set.name), self.current_set)
        self.set_box.blockSignals(True)
        self.set_box.clear()
        for label_set in sets:
            self.set_box.addItem(icon("labels"), label_set.name)
        self.set_box.addItem(icon("plus"), NEW_SET)
        index = self.set_box.findText(current)
        self.set_box.setCurrentIndex(index if index >= 0 else 0)
        self.set_box.blockSignals(False)
        chosen = self._chosen_set()
        if index < 0 or (chosen is not None and (self.current_set is None or chosen.name != self.current_set.name)):
            self._set_chosen()
        else:
            self.name_field.setVisible(current == NEW_SET)

    def choose_label_set(self, name: str) -> None:
        index = self.set_box.findText(name)
        if index >= 0:
            self.set_box.setCurrentIndex(index)
            self._set_chosen()

    def _chosen_set(self) -> LabelSet | None:
        return next((s for s in self.label_sets if s.name == self.set_box.currentText()), None)

    def _set_chosen(self, *_) -> None:
        """A set chosen in the box: its labels, and the suggestions the library holds from its last run."""
        chosen = self._chosen_set()
        self.name_field.setVisible(chosen is None)
        self.labels_field.setText(", ".join(chosen.labels) if chosen else "")
        if self._progress is not None:
            return  # a run's results are for the set it ran
        self.current_set = chosen
        self._decided, self._none = {}, None
        self.pending = defaultdict(dict)
        if chosen is None:
            self.tree.clear()
            self._items.clear()
            self._say("")
        self.reload()

    # --- running ---

    def run(self) -> None:
        if self._progress is not None:
            return
        try:
            labels = parse_labels(self.labels_field.text())
        except ClipdeskError as exc:
            self._say(str(exc), error=True)
            return
        chosen = self._chosen_set()
        name = chosen.name if chosen else self.name_field.text().strip()
        if not name:
            self._say("Give the new label set a name, so that it can be run again later", error=True)
            self.name_field.setFocus()
            return
        photo_ids = None
        if self.scope_selection.isChecked():
            photo_ids = self.selection_ids()
            if not photo_ids:
                self._say("Select photos in the grid first, or run over the whole library", error=True)
                return
        self._show_running(True)
        self._say("Saving the label set…")
        self.service.save_label_set(name, labels, on_done=lambda saved, ids=photo_ids: self._start(saved, ids))

    def _start(self, label_set: LabelSet, photo_ids: list[int] | None) -> None:
        self.set_label_sets([s for s in self.label_sets if s.name != label_set.name] + [label_set])
        self.set_box.setCurrentIndex(self.set_box.findText(label_set.name))
        self.current_set = label_set
        self._decided, self._none = {}, None
        where = "the whole library" if photo_ids is None else f"{len(photo_ids):,} selected photos"
        self._say(f"Scoring {where} with {len(label_set.labels)} labels…")
        self._progress = self.service.run_label_set(label_set.name, photo_ids)

    def cancel(self) -> None:
        if self._progress is not None:
            self._progress.cancel()

    def _run_progress(self, stage: str, done: int, total: int, _rate: float) -> None:
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
        self.status.setVisible(True)
        self.status.setText(stage.capitalize() + "…")

    def _run_failed(self, message: str) -> None:
        self._progress = None
        self._show_running(False)
        self._say(message, error=True)

    def _run_finished(self, run) -> None:
        self._progress = None
        self.current_set = replace(self.current_set, run_model=run.model)
        self._show_running(False)
        self.pending = defaultdict(dict)
        self._decided, self._none = defaultdict(int), 0
        for outcome in run.outcomes:
            if outcome.status in (SUGGESTED, APPLIED):
                self.pending[outcome.label][outcome.photo_id] = outcome.confidence
            elif outcome.status == DECIDED:
                self._decided[outcome.label] += 1
            elif outcome.status == NONE:
                self._none += 1
        self._fill({outcome.photo_id: outcome.path for outcome in run.outcomes})
        suggested = sum(len(photos) for photos in self.pending.values())
        self._say(f"{suggested:,} suggestions for {len(run.outcomes):,} photos; {self._none:,} fit none of the "
                  "labels.")
        self.service.tagsChanged.emit()  # the sidebar shows the new suggestions

    def reload(self, *_) -> None:
        """List the current set's suggestions as the library holds them now (after an undo, a tag added in
        the grid, a restart): the list never shows what is no longer there."""
        if self.current_set is None or self._progress is not None:
            self._update_buttons()
            return
        self._generation += 1
        run_model, model = self.current_set.run_model, self.service.model_key
        if run_model is not None and model is not None and run_model != model:
            # Another model made these: listing them as this model's would mislead.
            self.pending = defaultdict(dict)
            self._fill({})
            self._say(f"The suggestions stored for {self.current_set.name} came from {model_name(run_model)}. "
                      f"Suggest tags to get {model_name(model)}'s.")
            return
        self.service.stored_suggestions(self.current_set.labels,
                                        on_done=lambda found, g=self._generation: self._reloaded(found, g))

    def _reloaded(self, found: dict, generation: int) -> None:
        if generation != self._generation or self.current_set is None or self._progress is not None:
            return  # the list was edited, or another set chosen, since this was read
        label_of = {label.casefold(): label for label in self.current_set.labels}
        pending, paths = defaultdict(dict), {}
        for name, items in found.items():
            label = label_of.get(name.casefold(), name)
            for suggestion in items:
                pending[label][suggestion.photo_id] = suggestion.confidence or 0.0
                paths[suggestion.photo_id] = suggestion.path
        if {label: photos for label, photos in pending.items() if photos} == \
                {label: photos for label, photos in self.pending.items() if photos}:
            self._update_buttons()
            return  # the list shows just that: rows stay as they are under the user's pointer
        self.pending = pending
        selected = {(item.data(0, LABEL_ROLE), item.data(0, PHOTO_ID_ROLE)) for item in self.tree.selectedItems()}
        scroll = self.tree.verticalScrollBar().value()
        self._fill(paths)
        for items in self._items.values():
            for item in items:
                item.setSelected((item.data(0, LABEL_ROLE), item.data(0, PHOTO_ID_ROLE)) in selected)
        self.tree.verticalScrollBar().setValue(scroll)

    def _fill(self, paths: dict[int, str]) -> None:
        decided, none = self._decided, self._none
        self.tree.clear()
        self._items.clear()
        self._requested.clear()
        self.loader.forget_pending()
        placeholder = icon("image", QPalette.ColorRole.PlaceholderText)
        bold = QFont(self.tree.font())
        bold.setBold(True)
        for label in self.current_set.labels:
            photos = sorted(self.pending.get(label, {}).items(), key=lambda item: -item[1])
            group = QTreeWidgetItem([label, ""])
            group.setFont(0, bold)
            group.setData(0, LABEL_ROLE, label)
            extra = f", {decided[label]:,} already tagged" if decided.get(label) else ""
            group.setToolTip(0, f"{len(photos):,} suggested{extra}")
            group.setText(1, f"{len(photos):,}")
            self.tree.addTopLevelItem(group)
            for photo_id, confidence in photos[:SHOWN_PER_LABEL]:
                item = QTreeWidgetItem([display_path(os.path.basename(paths[photo_id])), f"{confidence:.0%}"])
                item.setData(0, PHOTO_ID_ROLE, photo_id)
                item.setData(0, LABEL_ROLE, label)
                item.setData(0, CONFIDENCE_ROLE, confidence)
                item.setToolTip(0, display_path(paths[photo_id]))
                item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                item.setIcon(0, placeholder)
                item.setSizeHint(0, QSize(-1, THUMB + 6))
                group.addChild(item)
                self._items[photo_id].append(item)
            if len(photos) > SHOWN_PER_LABEL:
                more = QTreeWidgetItem([f"…and {len(photos) - SHOWN_PER_LABEL:,} more (use the threshold)", ""])
                more.setFlags(Qt.ItemFlag.ItemIsEnabled)
                group.addChild(more)
            if photos:
                group.setExpanded(True)
            else:
                group.setForeground(0, QBrush(self.palette().color(QPalette.ColorRole.PlaceholderText)))
        nothing = QTreeWidgetItem(["None of these", "" if none is None else f"{none:,}"])
        nothing.setFlags(Qt.ItemFlag.ItemIsEnabled)
        nothing.setToolTip(0, "Photos that no label describes better than a generic caption: no suggestion")
        nothing.setForeground(0, QBrush(self.palette().color(QPalette.ColorRole.PlaceholderText)))
        self.tree.addTopLevelItem(nothing)
        self._update_buttons()

    def want_thumbnail(self, photo_id: int) -> None:
        if photo_id not in self._requested:
            self._requested.add(photo_id)
            self.loader.request(photo_id, round(THUMB * self.devicePixelRatioF()))

    def _thumbnail(self, photo_id: int, _side: int, image: QImage) -> None:
        items = self._items.get(photo_id)
        if items:
            pixmap = QPixmap.fromImage(image)
            pixmap.setDevicePixelRatio(self.devicePixelRatioF())
            for item in items:
                item.setIcon(0, QIcon(pixmap))

    # --- reviewing ---

    def _selected_suggestions(self) -> dict[str, list[int]]:
        chosen: dict[str, list[int]] = defaultdict(list)
        for item in self.tree.selectedItems():
            photo_id = item.data(0, PHOTO_ID_ROLE)
            if photo_id is not None:
                chosen[item.data(0, LABEL_ROLE)].append(int(photo_id))
            elif item.data(0, LABEL_ROLE) is not None:  # a whole label group
                chosen[item.data(0, LABEL_ROLE)].extend(self.pending.get(item.data(0, LABEL_ROLE), {}))
        return {label: list(dict.fromkeys(ids)) for label, ids in chosen.items() if ids}

    def _above_threshold(self) -> dict[str, list[int]]:
        limit = self.threshold.value() / 100
        return {label: ids for label, photos in self.pending.items()
                if (ids := [photo_id for photo_id, confidence in photos.items() if confidence >= limit])}

    def review_selected(self, accept: bool) -> None:
        self._review(self._selected_suggestions(), accept)

    def accept_above(self) -> None:
        self._review(self._above_threshold(), True)

    def _review(self, chosen: dict[str, list[int]], accept: bool) -> None:
        self._generation += 1
        self.service.review_suggestions(chosen, accept)
        for label, ids in chosen.items():
            for photo_id in ids:
                self.pending.get(label, {}).pop(photo_id, None)
                for item in self._items.pop(photo_id, []):
                    if item.data(0, LABEL_ROLE) == label and item.parent() is not None:
                        group = item.parent()
                        group.removeChild(item)
                        group.setText(1, f"{len(self.pending.get(label, {})):,}")
        self._update_buttons()

    def _update_buttons(self, *_) -> None:
        limit = self.threshold.value()
        above = sum(len(ids) for ids in self._above_threshold().values())
        self.accept_above_button.setText(f"Accept {above:,} ≥ {limit}%")
        self.accept_above_button.setToolTip(f"Accept the {above:,} suggestions at or above {limit}% (the slider)")
        self.accept_above_button.setEnabled(above > 0 and self._progress is None)
        chosen = bool(self._selected_suggestions())
        self.accept_button.setEnabled(chosen)
        self.reject_button.setEnabled(chosen)

    def _clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        photo_id = item.data(0, PHOTO_ID_ROLE)
        if photo_id is not None:
            self.photoActivated.emit(int(photo_id))

    # --- fitting a short window ---

    def _help_toggled(self, shown: bool) -> None:
        self._help_wanted = shown
        self.intro.setVisible(shown)  # asked for: shown even where the list then has fewer rows

    def _list_room(self) -> int:
        """Height the list needs for its header and MIN_LIST_ROWS photo rows."""
        return self.tree.header().sizeHint().height() + MIN_LIST_ROWS * (THUMB + 6) + 2 * self.tree.frameWidth()

    def _fit_height(self) -> None:
        """Show the help text when the user wants it and the list keeps MIN_LIST_ROWS rows beside it."""
        spare = self.tree.height() - self._list_room()
        if self.intro.isVisible():
            shown = self._help_wanted and spare >= 0
        else:
            intro = self.intro.heightForWidth(self.width() - 28) + self.layout().spacing()
            shown = self._help_wanted and spare >= intro
        if shown != self.intro.isVisible():
            self.intro.setVisible(shown)
        self.help_button.blockSignals(True)
        self.help_button.setChecked(shown)
        self.help_button.blockSignals(False)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_height()

    # --- small things ---

    def _show_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setVisible(running)
        self.progress.setVisible(running)
        self.progress.setRange(0, 0)

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setVisible(bool(text))  # no empty line (and its spacing) taken from the list
        self.status.setText(f"<span style='color:#d64545'>{text}</span>" if error else text)

    def shutdown(self) -> None:
        self.cancel()
        self.loader.stop()
