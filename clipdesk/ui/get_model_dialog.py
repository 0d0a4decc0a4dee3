"""Get a model: the catalog of photo models on the model hub, its licence shown and accepted, then a
resumable, verified download that registers the model (Settings → Models → Get a model…, the welcome page,
and the banner shown while the bundled emoji model searches photos).

The work is the run side's (runtime/model_get.py), on a worker lane: planning (one HEAD per file), the
free-space check and the licence files first; the download after the user accepts the licence. Cancelling
keeps the partial files, so getting the same model again resumes where it stopped. Nothing is registered
unless every file matched its SHA-256 and both towers ran (get_model's promise).
"""

from __future__ import annotations

import html
import os
import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QPalette
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDialog, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QPlainTextEdit, QProgressBar, QPushButton, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from clipdesk.errors import ClipdeskError
from clipdesk.runtime.catalog import REPO_PATTERN
from clipdesk.progress import format_duration
from clipdesk.settings import load_settings
from clipdesk.ui.icons import icon
from clipdesk.ui.theme import style
from clipdesk.ui.workers import Lane, SignalProgress

# An extra catalog file whose entries are added to the shipped one, like `clipdesk model get --catalog FILE`:
# for a local mirror's catalog, and for the tests' stand-in hub. Read only when no catalog_file is passed.
CATALOG_ENV = "CLIPDESK_CATALOG"
ERROR_COLOUR = "#d64545"
COLUMNS = ["Model", "Size", "Licence", "ImageNet top-1", "Runs on", "Needs"]
ENTRY_ROLE = Qt.ItemDataRole.UserRole
LICENCE_LINES = 400  # of each licence file shown; the files themselves are kept with the model



def catalog_file_in_use(catalog_file: str | os.PathLike | None = None) -> str | None:
    if catalog_file is not None:
        return os.fspath(catalog_file)
    return os.environ.get(CATALOG_ENV) or None


def load_entries(catalog_file: str | os.PathLike | None = None) -> dict:
    from clipdesk.runtime.catalog import load_catalog

    return load_catalog(catalog_file_in_use(catalog_file))


def recommended_entry(catalog_file: str | os.PathLike | None = None):
    """The catalog's recommended photo model (its default variant), or None when the catalog has none or
    cannot be read."""
    try:
        entries = load_entries(catalog_file)
    except ClipdeskError:
        return None
    entry = next((entry for entry in entries.values() if entry.recommended), None)
    return _default_choice(entry) if entry is not None else None


def get_photo_model_text(catalog_file: str | os.PathLike | None = None) -> str:
    """The label of the buttons that open this dialog on the recommended model: 'Get a photo model (606 MB)'."""
    entry = recommended_entry(catalog_file)
    return f"Get a photo model ({entry.download_mb:,.0f} MB)" if entry is not None else "Get a photo model…"


def quality(entry) -> tuple[str, str]:
    """The quality column's text and tooltip: the published ImageNet zero-shot top-1 and where it comes from."""
    figure = entry.imagenet_zero_shot or {}
    top1, source = figure.get("top1"), figure.get("source") or "no source given"
    text = f"{top1:.1f} %" if isinstance(top1, (int, float)) else "no ImageNet figure"
    return text, f"ImageNet zero-shot top-1 accuracy. Source: {source}"


def progress_text(done: int, total: int, rate: float) -> str:
    """'12.3 / 606.0 MB · 4.5 MB/s · 02:13 left' (speed and time left once they are known)."""
    parts = [f"{done / 1e6:,.1f} / {total / 1e6:,.1f} MB" if total > 0 else f"{done / 1e6:,.1f} MB"]
    if rate > 0:
        parts.append(f"{rate / 1e6:,.1f} MB/s")
        if total > 0:
            parts.append(f"{format_duration(max(total - done, 0) / rate)} left")
    else:
        parts.append("measuring speed…")
    return " · ".join(parts)


def megabytes(count: int) -> str:
    return f"{count / 1e6:,.1f} MB" if count < 100e6 else f"{count / 1e6:,.0f} MB"


def probe_device(preference: str) -> str:
    """Where models run on this computer for the device preference ('CPU' or 'CUDA'); the first call
    creates an ONNX session (runtime_device keeps the answer), so call it off the UI thread."""
    from clipdesk.runtime.encoders import runtime_device

    try:
        return runtime_device(preference)
    except ClipdeskError:
        return "CPU"


def prepare(entry) -> tuple[object, list[tuple[str, str]]]:
    """Plan the download, check the disk has room, and fetch the licence files. Returns the plan and
    [(licence file name, its text)]. Runs on a worker."""
    from clipdesk.runtime.model_get import licence_texts, prepare_download

    plan = prepare_download(entry)
    return plan, licence_texts(plan, LICENCE_LINES)


def prepare_repo(repo: str) -> tuple[object, object, list[tuple[str, str]]]:
    """A hub repository outside the catalog (OWNER/REPO): its entry, from the repository's file list and
    model card, then as prepare(). Runs on a worker."""
    from clipdesk.runtime.model_get import entry_for_repo

    entry = entry_for_repo(repo).choose(None)
    return (entry, *prepare(entry))


class GetModelDialog(QDialog):
    """Choose a catalog model, read and accept its licence, download, verify and register it."""

    modelInstalled = Signal(str, bool)  # package name, whether it was made the default model

    CHOOSE, PLANNING, LICENCE, DOWNLOADING = "choose", "planning", "licence", "downloading"

    def __init__(self, parent=None, catalog_file: str | os.PathLike | None = None, select: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Get a model")
        self.resize(980, 560)
        self.catalog_file = catalog_file_in_use(catalog_file)
        self._lane = Lane(1, "clipdesk-get-model", self)
        self._probe_lane = Lane(1, "clipdesk-get-model-probe", self)
        self.device_preference = load_settings().get("device", "auto")
        self.device: str | None = None
        self.entries: dict = {}
        self.state = self.CHOOSE
        self.chosen = None  # the CatalogEntry (a chosen variant) being got
        self.plan = None
        self.progress: SignalProgress | None = None
        self._last_done, self._last_total = 0, 0
        self._build()
        self._load(select)
        self._set_state(self.CHOOSE)
        self._probe_lane.submit(probe_device, self.device_preference, on_done=self._probed,
                                on_error=lambda _message: self._probed("CPU"))
        style(self)

    # --- building ---

    def _build(self) -> None:
        intro = QLabel("Photo models from the model hub (Hugging Face). Each file is checked against its published "
                       "SHA-256 and the model is tried on a few known photos before it is added; an interrupted "
                       "download resumes where it stopped.", self)
        intro.setWordWrap(True)
        intro.setObjectName("muted")
        self.table = QTreeWidget(self)
        self.table.setHeaderLabels(COLUMNS)
        self.table.setRootIsDecorated(False)
        self.table.setUniformRowHeights(True)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.table.header()
        header.setStretchLastSection(True)  # "Needs" takes what is left, elided (the whole text in its tooltip)
        for column in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.itemDoubleClicked.connect(lambda *_: self.get())

        self.details = QLabel(self)
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.variant_label = QLabel("Variant:", self)
        self.variant_combo = QComboBox(self)
        self.variant_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.variant_combo.currentIndexChanged.connect(self._variant_changed)
        self.default_check = QCheckBox("Make it the default model", self)
        self.default_check.setChecked(True)
        self.get_button = QPushButton(icon("model", QPalette.ColorRole.HighlightedText), "Get", self)
        self.get_button.setObjectName("primary")
        bold = QFont(self.get_button.font())
        bold.setWeight(QFont.Weight.DemiBold)  # the primary buttons' weight (theme.py)
        # Wide enough for any size it may name: its text changes with the selection.
        self.get_button.setMinimumWidth(QFontMetrics(bold).horizontalAdvance("Get (9,999 MB)") + 64)
        self.get_button.clicked.connect(self.get)
        choose_row = QHBoxLayout()
        choose_row.addWidget(self.variant_label)
        choose_row.addWidget(self.variant_combo)
        choose_row.addStretch(1)
        choose_row.addWidget(self.default_check)
        choose_row.addSpacing(12)
        choose_row.addWidget(self.get_button)

        # Any OpenCLIP or transformers CLIP repository of the hub, converted on this machine.
        self.repo_edit = QLineEdit(self)
        self.repo_edit.setPlaceholderText("Or any OpenCLIP or transformers CLIP repository: OWNER/NAME, "
                                          "e.g. laion/CLIP-ViT-B-16-laion2B-s34B-b88K")
        self.repo_edit.textChanged.connect(lambda *_: self._set_state(self.state))
        self.repo_button = QPushButton("Get from the hub", self)
        self.repo_button.clicked.connect(self.get_repo)
        repo_row = QHBoxLayout()
        repo_row.addWidget(self.repo_edit, 1)
        repo_row.addWidget(self.repo_button)

        # The licence, shown once its files are fetched, to accept before the download.
        self.licence_box = QWidget(self)
        self.licence_title = QLabel(self.licence_box)
        self.licence_title.setWordWrap(True)
        self.licence_text = QPlainTextEdit(self.licence_box)
        self.licence_text.setReadOnly(True)
        self.licence_text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.accept_button = QPushButton(icon("check", QPalette.ColorRole.HighlightedText), "Accept and download",
                                         self.licence_box)
        self.accept_button.setObjectName("primary")
        self.accept_button.clicked.connect(self.accept_licence)
        self.decline_button = QPushButton("Decline", self.licence_box)
        self.decline_button.clicked.connect(self.decline_licence)
        licence_buttons = QHBoxLayout()
        licence_buttons.addStretch(1)
        licence_buttons.addWidget(self.decline_button)
        licence_buttons.addWidget(self.accept_button)
        licence_layout = QVBoxLayout(self.licence_box)
        licence_layout.setContentsMargins(0, 0, 0, 0)
        licence_layout.addWidget(self.licence_title)
        licence_layout.addWidget(self.licence_text, 1)
        licence_layout.addLayout(licence_buttons)

        self.progress_bar = QProgressBar(self)
        self.progress_bar.setTextVisible(False)
        self.progress_label = QLabel(self)
        self.progress_label.setObjectName("muted")
        self.cancel_button = QPushButton("Cancel download", self)
        self.cancel_button.clicked.connect(self.cancel)
        running = QHBoxLayout()
        running.addWidget(self.progress_bar, 1)
        running.addWidget(self.cancel_button)

        self.status = QLabel(self)  # one line: what happened last (an error in red)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QPushButton("Close", self)
        self.close_button.clicked.connect(self.close)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignBottom)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 2)
        layout.addWidget(self.details)
        layout.addLayout(choose_row)
        layout.addLayout(repo_row)
        layout.addWidget(self.licence_box, 3)
        layout.addLayout(running)
        layout.addWidget(self.progress_label)
        layout.addLayout(bottom)

    def _load(self, select: str | None) -> None:
        from clipdesk.runtime.registry import model_entries

        problem = None
        try:
            self.entries = load_entries(self.catalog_file)
        except ClipdeskError as exc:
            self.entries, problem = {}, str(exc)
        installed = model_entries()
        self.table.clear()
        for entry in self.entries.values():
            default = _default_choice(entry)
            title = entry.title + ("   ★ recommended" if entry.recommended else "")
            if default.package_name in installed and not installed[default.package_name].bundled:
                title += "   (installed)"
            top1, source = quality(entry)
            item = QTreeWidgetItem([title, f"{default.download_mb:,.0f} MB", entry.licence, top1, "…",
                                    entry.needs or "—"])
            item.setData(0, ENTRY_ROLE, entry.name)
            item.setToolTip(0, f"{entry.name}: {entry.about}")
            item.setToolTip(3, source)
            item.setToolTip(5, entry.needs or "Runs well on a CPU")
            item.setToolTip(4, "Where this model would run on this computer, with the device chosen in "
                               "Settings → Device")
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if entry.recommended:
                font = item.font(0)
                font.setBold(True)
                item.setFont(0, font)
            self.table.addTopLevelItem(item)
        wanted = select or next((entry.name for entry in self.entries.values() if entry.recommended), None)
        self.select(wanted)
        if problem:
            self.show_error(problem)

    def select(self, name: str | None) -> None:
        """Select a catalog entry by name (the first one when there is no such entry)."""
        items = [self.table.topLevelItem(i) for i in range(self.table.topLevelItemCount())]
        item = next((item for item in items if item.data(0, ENTRY_ROLE) == name), items[0] if items else None)
        if item is not None:
            self.table.setCurrentItem(item)
            item.setSelected(True)

    def _probed(self, where: str) -> None:
        self.device = where
        for i in range(self.table.topLevelItemCount()):
            self.table.topLevelItem(i).setText(4, where)
        self._variant_changed()  # the details name it too (the chosen variant and the status line stay)

    # --- choosing ---

    def selected_entry(self):
        items = self.table.selectedItems()
        return self.entries.get(items[0].data(0, ENTRY_ROLE)) if items else None

    def chosen_variant(self) -> str | None:
        return self.variant_combo.currentData() if self.variant_combo.count() else None

    def _selection_changed(self) -> None:
        entry = self.selected_entry()
        if self.state == self.CHOOSE:
            self.show_message("")  # what was said of another model
        self.variant_combo.blockSignals(True)
        self.variant_combo.clear()
        if entry is not None and entry.variants:
            for variant in entry.variants:
                size = entry.choose(variant).download_mb
                self.variant_combo.addItem(f"{variant} ({size:,.0f} MB)", variant)
            default = entry.default_variant or next(iter(entry.variants))
            self.variant_combo.setCurrentIndex(list(entry.variants).index(default))
        self.variant_combo.blockSignals(False)
        has_variants = self.variant_combo.count() > 0
        self.variant_label.setVisible(has_variants)
        self.variant_combo.setVisible(has_variants)
        self._variant_changed()

    def _variant_changed(self, *_) -> None:
        entry = self.selected_entry()
        if entry is None:
            self.details.setText("")
            self.get_button.setEnabled(False)
            return
        try:
            chosen = entry.choose(self.chosen_variant())
        except ClipdeskError as exc:
            self.details.setText(str(exc))
            return
        facts = [f"{chosen.download_mb:,.0f} MB download", f"licence {entry.licence}",
                 f"languages: {', '.join(entry.languages)}", f"from {entry.repo}"]
        if self.device:
            facts.append(f"runs on the {self.device} here")
        needs = f" Needs {entry.needs}." if entry.needs else ""
        self.details.setText(f"<b>{_html(entry.title)}</b>{' · recommended' if entry.recommended else ''}<br>"
                             f"{_html(chosen.about)}{_html(needs)}<br><span style='color:palette(placeholder-text)'>"
                             f"{_html(' · '.join(facts))}</span>")
        self._fit_details()
        self.get_button.setText(f"Get ({chosen.download_mb:,.0f} MB)")
        self.get_button.setEnabled(self.state == self.CHOOSE)

    def _fit_details(self) -> None:
        """Keep the whole description visible: a word-wrapped label in this layout is otherwise given the
        height of fewer lines than it wraps to, and its last line is cut off."""
        width = self.details.width() if self.details.isVisible() else self.width() - 24
        self.details.setMinimumHeight(max(self.details.heightForWidth(max(width, 200)),
                                          self.fontMetrics().lineSpacing() * 3))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_details()

    # --- getting ---

    def get(self) -> None:
        """Plan the download and fetch the licence files on the worker; then the licence is shown."""
        entry = self.selected_entry()
        if entry is None or self.state != self.CHOOSE:
            return
        try:
            self.chosen = entry.choose(self.chosen_variant())
        except ClipdeskError as exc:
            self.show_error(str(exc))
            return
        self.show_message(f"Asking the model hub about {self.chosen.title}…")
        self._set_state(self.PLANNING)
        self._lane.submit(prepare, self.chosen, on_done=self._prepared, on_error=self._prepare_failed)

    def get_repo(self) -> None:
        """The typed OWNER/REPO: planned on the worker like a catalog entry, then its licence is shown."""
        repo = self.repo_edit.text().strip()
        if self.state != self.CHOOSE or not repo:
            return
        if not REPO_PATTERN.match(repo):
            self.show_error(f"{repo!r} is not a repository name: type OWNER/NAME, as on the model hub")
            return
        self.show_message(f"Asking the model hub about {repo}…")
        self._set_state(self.PLANNING)
        self._lane.submit(prepare_repo, repo, on_done=self._prepared_repo, on_error=self._prepare_failed)

    def keyPressEvent(self, event) -> None:
        # Enter in the repository field gets that repository, not the catalog entry of the default button.
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.repo_edit.hasFocus():
            self.get_repo()
            return
        super().keyPressEvent(event)

    def _prepared_repo(self, outcome) -> None:
        self.chosen, plan, texts = outcome
        self._prepared((plan, texts))

    def _prepared(self, outcome) -> None:
        self.plan, texts = outcome
        entry = self.chosen
        left, total = self.plan.remaining_bytes, self.plan.total_bytes
        licences = sum(self.plan.remotes[name].size or 0 for name in entry.licence_files if name in self.plan.remotes)
        resumed = 0 < left < total - licences  # more than the licence files is here already
        what = (f"the remaining {megabytes(left)} of {megabytes(total)} (an earlier download resumes)" if resumed
                else megabytes(left))
        self.licence_title.setText(f"<b>Licence: {_html(entry.licence)}</b>. Read it, then accept it to download "
                                   f"{what}.")
        if texts:
            self.licence_text.setPlainText("\n\n".join(f"── {name} ──\n{text}" for name, text in texts))
        else:
            self.licence_text.setPlainText(f"{entry.repo} has no licence file to show. The catalog names its "
                                           f"licence as: {entry.licence}.\nSee https://huggingface.co/{entry.repo}")
        self.licence_text.moveCursor(self.licence_text.textCursor().MoveOperation.Start)
        self.show_message("")
        self._set_state(self.LICENCE)

    def _prepare_failed(self, message: str) -> None:
        self._set_state(self.CHOOSE)
        self.show_error(message)

    def decline_licence(self) -> None:
        self.plan = None
        self._set_state(self.CHOOSE)
        self.show_message("Licence declined; nothing was downloaded.")

    def accept_licence(self) -> None:
        from clipdesk.runtime.model_get import get_model

        if self.state != self.LICENCE or self.plan is None:
            return
        self.progress = SignalProgress(self._lane)
        self.progress.signals.changed.connect(self._progressed)
        self._last_done, self._last_total = 0, self.plan.total_bytes
        self._set_state(self.DOWNLOADING)
        self._progressed("downloading", self.plan.total_bytes - self.plan.remaining_bytes, self.plan.total_bytes, 0.0)
        make_default = self.default_check.isChecked()
        self._lane.submit(get_model, self.chosen, plan=self.plan, progress=self.progress, make_default=make_default,
                          device=self.device_preference, log=self._log,
                          on_done=lambda package: self._installed(package, make_default),
                          on_error=self._download_failed)

    def _log(self, line: str) -> None:  # called on the worker
        self._lane.post(self._logged, line)

    def _logged(self, line: str) -> None:
        if self.state == self.DOWNLOADING:
            self.progress_label.setText(f"{line.split(':')[0]}; adding it…" if line.startswith("verified")
                                        else line[:120])

    def _progressed(self, _stage: str, done: int, total: int, rate: float) -> None:
        if self.state != self.DOWNLOADING:
            return
        self._last_done, self._last_total = done, total
        if total > 0 and done >= total:
            self.progress_bar.setRange(0, 0)
            self.progress_label.setText("Downloaded; checking the files and trying the model on known photos…")
            self.cancel_button.setEnabled(False)
            return
        scale = max(total, 1) / 1000
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(int(done / scale) if total > 0 else 0)
        self.progress_label.setText(progress_text(done, total, rate))

    def cancel(self) -> None:
        if self.state == self.DOWNLOADING and self.progress is not None and not self.progress.cancelled:
            self.progress.cancel()
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText("Stopping…")

    def _installed(self, package, made_default: bool) -> None:
        self._set_state(self.CHOOSE)
        self.progress = None
        self._load(self.chosen.name if self.chosen else None)  # marks it installed
        self.show_message(f"Installed {package.name}" + (" and made it the default model." if made_default else "."))
        self.modelInstalled.emit(package.name, made_default)

    def _download_failed(self, message: str) -> None:
        cancelled = self.progress is not None and self.progress.cancelled
        self.progress = None
        self._set_state(self.CHOOSE)
        if cancelled:
            kept = (f"{self._last_done / 1e6:,.1f} of {self._last_total / 1e6:,.1f} MB kept"
                    if self._last_total else "what arrived is kept")
            self.show_message(f"Download cancelled ({kept}); getting this model again resumes where it stopped.")
        else:
            self.show_error(message)

    # --- what the dialog shows ---

    def show_message(self, text: str) -> None:
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setText(" ".join(text.split()))

    def show_error(self, message: str) -> None:
        self.status.setTextFormat(Qt.TextFormat.RichText)
        self.status.setText(f"<span style='color:{ERROR_COLOUR}'>{_html(' '.join(message.split()))}</span>")

    def status_text(self) -> str:
        """The status line as plain text (tests and screen readers)."""
        return self.status.text() if self.status.textFormat() == Qt.TextFormat.PlainText else _plain(self.status.text())

    def _set_state(self, state: str) -> None:
        self.state = state
        choosing = state == self.CHOOSE
        self.table.setEnabled(choosing)
        self.variant_combo.setEnabled(choosing)
        self.default_check.setEnabled(state in (self.CHOOSE, self.LICENCE))
        self.get_button.setEnabled(choosing and self.selected_entry() is not None)
        self.repo_edit.setEnabled(choosing)
        self.repo_button.setEnabled(choosing and bool(self.repo_edit.text().strip()))
        self.licence_box.setVisible(state in (self.LICENCE, self.DOWNLOADING))
        self.accept_button.setEnabled(state == self.LICENCE)
        self.decline_button.setEnabled(state == self.LICENCE)
        self.accept_button.setVisible(state == self.LICENCE)
        self.decline_button.setVisible(state == self.LICENCE)
        running = state in (self.PLANNING, self.DOWNLOADING)
        self.progress_bar.setVisible(running)
        self.progress_label.setVisible(state == self.DOWNLOADING)
        self.cancel_button.setVisible(state == self.DOWNLOADING)
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel download")
        if state == self.PLANNING:
            self.progress_bar.setRange(0, 0)
        if not running:
            self.progress_label.setText("")

    @property
    def busy(self) -> bool:
        return self.state in (self.PLANNING, self.DOWNLOADING)

    # --- closing ---

    def shutdown(self, timeout_s: float = 15) -> None:
        """Stop a running download (it resumes next time) and wait for the workers."""
        if self.progress is not None:
            self.progress.cancel()
        self._lane.shutdown(timeout_s)
        self._probe_lane.shutdown(timeout_s)

    def done(self, result: int) -> None:
        """Every way of closing the dialog ends here (a close event rejects it)."""
        if self.progress is not None:
            self.progress.cancel()  # closing stops the download; the part files stay for a resume
        super().done(result)


def _default_choice(entry):
    """The entry with its default variant, or its first when it names none."""
    try:
        return entry.choose(None)
    except ClipdeskError:
        return entry.choose(next(iter(entry.variants)))


def _html(text: str) -> str:
    return html.escape(text, quote=False)


def _plain(rich: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", rich))
