"""Settings: models (list, import with progress, choose the default, remove), device, library, appearance.

Importing runs `clipdesk model import` as a child process: converting a checkpoint (no torch needed)
holds the whole model in memory for a while, which the app should not, and a child can be cancelled
outright (an import that is killed leaves nothing in the model store). Its log lines are the progress
shown here.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QProcess, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QAbstractItemView, QButtonGroup, QCheckBox, QDialog, QDialogButtonBox, QFileDialog,
                               QHBoxLayout, QHeaderView, QLabel, QMessageBox, QProgressBar, QPushButton,
                               QRadioButton, QTabWidget, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from clipdesk import paths
from clipdesk.errors import ClipdeskError
from clipdesk.runtime.video_frames import video_reader
from clipdesk.settings import load_settings, update_settings
from clipdesk.ui.icons import icon
from clipdesk.ui.theme import THEMES, current_theme, style
from clipdesk.ui.workers import Lane

CHECKPOINT_FILTER = ("CLIP checkpoints and model packages (*.pt *.pth *.bin *.safetensors *.zip *.ckpt);;"
                     "All files (*)")
DEVICE_TEXT = {
    "auto": "Automatic: CUDA when it really works on this computer, otherwise the CPU",
    "cpu": "CPU only",
    "cuda": "CUDA (NVIDIA GPU); falls back to the CPU when CUDA cannot run",
}


@dataclass
class ModelRow:
    name: str
    path: str
    bundled: bool
    default: bool
    embed_dim: int | None = None
    image_size: int | None = None
    precision: str | None = None
    description: str = ""
    error: str | None = None


def list_models() -> list[ModelRow]:
    """Installed models with their manifest facts (a broken package is listed with its problem)."""
    from clipdesk.runtime.package import load_package
    from clipdesk.runtime.registry import default_model_name, model_entries

    default = default_model_name()
    rows = []
    for entry in model_entries().values():
        row = ModelRow(entry.name, str(entry.path), entry.bundled, entry.name == default)
        try:
            manifest = load_package(entry.path).manifest
        except ClipdeskError as exc:
            row.error = str(exc)
        else:
            row.embed_dim, row.image_size = manifest.embed_dim, manifest.image_resolution
            row.precision = manifest.precision
            row.description = manifest.description
        rows.append(row)
    return rows


def import_command(source: str, make_default: bool) -> tuple[str, list[str]]:
    """The program and arguments of `clipdesk model import SOURCE` in this installation."""
    arguments = ["model", "import", source] + (["--default"] if make_default else [])
    if getattr(sys, "frozen", False):  # a bundled app: its executable is the command line too
        return sys.executable, arguments
    return sys.executable, ["-m", "clipdesk", *arguments]


def cli_error_line(output: str) -> str:
    """The one-line reason a failed `clipdesk` command printed (its last 'clipdesk: error:' line)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("clipdesk: error:"):
            return line.removeprefix("clipdesk: error:").strip()
    return lines[-1] if lines else "the import stopped without saying why"


class ModelsPage(QWidget):
    modelsChanged = Signal()  # the default model (or the list) changed

    def __init__(self, parent=None):
        super().__init__(parent)
        self._lane = Lane(1, "clipdesk-settings", self)
        self.table = QTreeWidget(self)
        self.table.setHeaderLabels(["Model", "Embedding", "Image", "Precision", "Source"])
        self.table.setRootIsDecorated(False)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.itemDoubleClicked.connect(lambda *_: self.make_default())
        self.default_button = QPushButton(icon("check"), "Use as default", self)
        self.default_button.clicked.connect(self.make_default)
        self.remove_button = QPushButton(icon("remove"), "Remove", self)
        self.remove_button.clicked.connect(self.remove)
        self.get_button = QPushButton(icon("model"), "Get a model…", self)
        self.get_button.setToolTip("Download a photo model from the model hub's catalog (licence shown first; "
                                   "checked against its published SHA-256 before it is added)")
        self.get_button.clicked.connect(lambda: self.open_get_model())
        self.get_dialog = None  # the Get a model dialog while it is open
        self.import_file_button = QPushButton(icon("plus"), "Import checkpoint or package file…", self)
        self.import_file_button.clicked.connect(self.choose_file)
        self.import_folder_button = QPushButton(icon("folder"), "Import folder…", self)
        self.import_folder_button.setToolTip("A model package folder (manifest.json, image.onnx, text.onnx) or a "
                                             "Hugging Face CLIPModel folder")
        self.import_folder_button.clicked.connect(self.choose_folder)
        self.default_check = QCheckBox("Make the imported model the default", self)
        self.default_check.setChecked(True)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 0)
        self.progress_text = QLabel(self)
        self.progress_text.setWordWrap(True)
        self.progress_text.setObjectName("muted")
        self.cancel_button = QPushButton("Cancel import", self)
        self.cancel_button.clicked.connect(self.cancel_import)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        note = QLabel("clipdesk's own default model knows icons, emoji and clip-art, not photographs. For photos, "
                      "get a model from the model hub (Get a model…), or import a real CLIP checkpoint: OpenAI "
                      "(.pt), OpenCLIP (.pt, .bin, .safetensors; GELU models are recognised by name), a Hugging "
                      "Face CLIPModel folder, or a clipdesk model package.", self)
        note.setWordWrap(True)
        note.setObjectName("muted")

        actions = QHBoxLayout()
        actions.addWidget(self.default_button)
        actions.addWidget(self.remove_button)
        actions.addStretch(1)
        actions.addWidget(self.get_button)
        imports = QHBoxLayout()
        imports.addWidget(self.import_file_button)
        imports.addWidget(self.import_folder_button)
        imports.addStretch(1)
        imports.addWidget(self.default_check)
        running = QHBoxLayout()
        running.addWidget(self.progress, 1)
        running.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(actions)
        layout.addSpacing(8)
        layout.addWidget(note)
        layout.addLayout(imports)
        layout.addLayout(running)
        layout.addWidget(self.progress_text)
        layout.addWidget(self.note)
        self.process: QProcess | None = None
        self._output = ""
        self._cancelling = False
        self._show_running(False)
        self.refresh()

    # --- the list ---

    def refresh(self) -> None:
        self._lane.submit(list_models, on_done=self._fill, on_error=self._failed)

    def _fill(self, rows: list[ModelRow]) -> None:
        selected = self.selected_name()
        self.table.clear()
        for row in rows:
            name = row.name + ("   (default)" if row.default else "")
            facts = ([f"{row.embed_dim}-d", f"{row.image_size} px", row.precision or ""] if row.error is None
                     else ["broken", "", ""])
            item = QTreeWidgetItem([name, *facts, "bundled" if row.bundled else "imported"])
            item.setData(0, Qt.ItemDataRole.UserRole, row)
            item.setToolTip(0, row.error or row.description or row.path)
            if row.default:
                font = item.font(0)
                font.setBold(True)
                item.setFont(0, font)
                item.setIcon(0, icon("check"))
            self.table.addTopLevelItem(item)
            if row.name == selected or (selected is None and row.default):
                item.setSelected(True)
        for column in range(1, 5):
            self.table.resizeColumnToContents(column)
        if not rows:
            self.note.setText("No model is installed yet: import one to index and search photos.")
        self._selection_changed()

    def selected_row(self) -> ModelRow | None:
        items = self.table.selectedItems()
        return items[0].data(0, Qt.ItemDataRole.UserRole) if items else None

    def selected_name(self) -> str | None:
        row = self.selected_row()
        return row.name if row else None

    def _selection_changed(self) -> None:
        row = self.selected_row()
        running = self.process is not None
        self.default_button.setEnabled(bool(row and not row.default and row.error is None and not running))
        self.remove_button.setEnabled(bool(row and not row.bundled and not running))

    def make_default(self) -> None:
        row = self.selected_row()
        if row is None or row.default or row.error:
            return
        from clipdesk.runtime.registry import set_default_model

        self._lane.submit(set_default_model, row.name, on_done=self._default_set, on_error=self._failed)

    def _default_set(self, _) -> None:
        self.note.setText("")
        self.refresh()
        self.modelsChanged.emit()

    def remove(self) -> None:
        row = self.selected_row()
        if row is None or row.bundled:
            return
        answer = QMessageBox.question(self, "Remove model", f"Remove the model “{row.name}” from clipdesk?\n\n"
                                      "Photos indexed with it keep their entries but need re-indexing with "
                                      "another model to be searched.")
        if answer != QMessageBox.StandardButton.Yes:
            return
        from clipdesk.runtime.registry import remove_model

        self._lane.submit(remove_model, row.name, on_done=self._default_set, on_error=self._failed)

    def _failed(self, message: str) -> None:
        self.note.setText(f"<span style='color:#d64545'>{message}</span>")

    # --- getting a model from the catalog ---

    def open_get_model(self, select: str | None = None, catalog_file: str | None = None) -> None:
        """The Get a model dialog over this page (window-modal). A model it installs refreshes the list; one it
        makes the default goes the way "Use as default" goes (modelsChanged: the window loads it and indexes
        the library with it)."""
        from clipdesk.ui.get_model_dialog import GetModelDialog

        if self.get_dialog is not None:
            self.get_dialog.raise_()
            return
        dialog = GetModelDialog(self.window(), catalog_file=catalog_file, select=select)
        dialog.modelInstalled.connect(self._model_got)
        dialog.finished.connect(lambda _result, d=dialog: self._get_dialog_closed(d))
        self.get_dialog = dialog
        dialog.open()

    def _model_got(self, name: str, made_default: bool) -> None:
        self.note.setText(f"Installed {name}" + (", now the default model." if made_default else "."))
        self.refresh()
        if made_default:
            self.modelsChanged.emit()

    def _get_dialog_closed(self, dialog) -> None:
        if self.get_dialog is dialog:
            self.get_dialog = None
        dialog.shutdown()
        dialog.deleteLater()

    # --- importing ---

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a CLIP checkpoint or model package", str(Path.home()),
                                              CHECKPOINT_FILTER)
        if path:
            self.start_import(path)

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Import a model package or Hugging Face folder", str(Path.home()))
        if path:
            self.start_import(path)

    def start_import(self, source: str) -> None:
        if self.process is not None:
            return
        program, arguments = import_command(source, self.default_check.isChecked())
        process = QProcess(self)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.readyReadStandardOutput.connect(self._read_output)
        process.finished.connect(self._import_finished)
        process.errorOccurred.connect(self._process_error)
        self.process, self._output = process, ""
        self.note.setText("")
        self.progress_text.setText(f"Importing {os.path.basename(source.rstrip(os.sep))}…")
        self._show_running(True)
        process.start(program, arguments)

    def _read_output(self) -> None:
        if self.process is None:
            return
        text = bytes(self.process.readAllStandardOutput()).decode("utf-8", errors="replace")
        self._output += text
        lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
        if lines:
            self.progress_text.setText(lines[-1][:200])

    def _import_finished(self, exit_code: int, _status) -> None:
        self._read_output()
        output, cancelled = self._output, self._cancelling
        self.process, self._cancelling = None, False
        self._show_running(False)
        if exit_code == 0:
            self.progress_text.setText("")
            self.note.setText(output.strip().splitlines()[-1] if output.strip() else "Imported.")
            self.refresh()
            self.modelsChanged.emit()
        elif cancelled:
            self.progress_text.setText("Import cancelled; nothing was added.")
        else:
            self.progress_text.setText("")
            self._failed("Import failed: " + cli_error_line(output))

    def _process_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.process is not None:
            self.process = None
            self._show_running(False)
            self._failed("Import failed: the clipdesk command could not be started")

    def cancel_import(self) -> None:
        process = self.process
        if process is not None and not self._cancelling:
            self._cancelling = True
            self.cancel_button.setText("Stopping…")
            self.cancel_button.setEnabled(False)
            process.terminate()
            # A child busy in native code may not answer at once: kill it if it is still there.
            QTimer.singleShot(3000, lambda: process.kill() if process.state() != QProcess.ProcessState.NotRunning
                              else None)

    def _show_running(self, running: bool) -> None:
        for widget in (self.progress, self.cancel_button):
            widget.setVisible(running)
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel import")
        for widget in (self.get_button, self.import_file_button, self.import_folder_button, self.default_check):
            widget.setEnabled(not running)
        self._selection_changed()

    def shutdown(self) -> None:
        if self.process is not None:
            self.cancel_import()
        if self.get_dialog is not None:
            dialog, self.get_dialog = self.get_dialog, None
            dialog.shutdown()
        self._lane.shutdown(5)


class DevicePage(QWidget):
    deviceChanged = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._lane = Lane(1, "clipdesk-device", self)
        current = load_settings().get("device", "auto")
        self.group = QButtonGroup(self)
        layout = QVBoxLayout(self)
        title = QLabel("Run models on", self)
        title.setObjectName("panelTitle")
        layout.addWidget(title)
        for choice, text in DEVICE_TEXT.items():
            button = QRadioButton(text, self)
            button.setProperty("device", choice)
            button.setChecked(choice == current)
            self.group.addButton(button)
            layout.addWidget(button)
        self.detected = QLabel("Checking whether CUDA works here…", self)
        self.detected.setObjectName("muted")
        self.detected.setWordWrap(True)
        layout.addSpacing(8)
        layout.addWidget(self.detected)
        layout.addStretch(1)
        self.group.buttonToggled.connect(self._toggled)
        self._lane.submit(self._probe, on_done=self._probed, on_error=self.detected.setText)

    @staticmethod
    def _probe() -> str:
        from clipdesk.runtime.encoders import runtime_device

        return runtime_device("cuda")

    def _probed(self, where: str) -> None:
        self.detected.setText("CUDA works on this computer." if where == "CUDA" else
                              "CUDA is not available on this computer: models run on the CPU.")

    def _toggled(self, button, checked: bool) -> None:
        if checked:
            choice = button.property("device")
            update_settings(device=choice)
            self.deviceChanged.emit(choice)


class LibraryPage(QWidget):
    def __init__(self, database: Path, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        title = QLabel("Library location", self)
        title.setObjectName("panelTitle")
        layout.addWidget(title)
        self.location = QLabel(str(database), self)
        self.location.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.location.setWordWrap(True)
        layout.addWidget(self.location)
        explain = QLabel("The library database holds folders, photo facts, embeddings and tags (not the photos "
                         "themselves). Choosing another folder opens the library there, or starts a new one; "
                         "it takes effect when clipdesk is restarted.", self)
        explain.setWordWrap(True)
        explain.setObjectName("muted")
        layout.addWidget(explain)
        row = QHBoxLayout()
        change = QPushButton(icon("folder"), "Change…", self)
        change.clicked.connect(self.change)
        default = QPushButton("Use the default location", self)
        default.clicked.connect(self.reset)
        show = QPushButton(icon("open"), "Open data folder", self)
        show.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(paths.data_dir()))))
        row.addWidget(change)
        row.addWidget(default)
        row.addWidget(show)
        row.addStretch(1)
        layout.addLayout(row)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        cache = QLabel(f"Thumbnails are cached in {paths.thumbnail_cache_path()} (safe to delete at any time).", self)
        cache.setWordWrap(True)
        cache.setObjectName("muted")
        layout.addSpacing(12)
        layout.addWidget(cache)
        videos_title = QLabel("Videos", self)
        videos_title.setObjectName("panelTitle")
        layout.addSpacing(12)
        layout.addWidget(videos_title)
        self.videos = QLabel(video_reader(), self)
        self.videos.setWordWrap(True)
        self.videos.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.videos)
        layout.addStretch(1)

    def change(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the clipdesk library", str(Path.home()))
        if folder:
            target = str(Path(folder) / "library.db")
            update_settings(library_path=target)
            self.note.setText(f"The library at {target} opens the next time clipdesk starts.")

    def reset(self) -> None:
        update_settings(library_path=None)
        self.note.setText(f"The library at {paths.database_path()} opens the next time clipdesk starts.")


class AppearancePage(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        title = QLabel("Colours", self)
        title.setObjectName("panelTitle")
        layout.addWidget(title)
        current = load_settings().get("theme", "system")
        self.group = QButtonGroup(self)
        labels = {"system": "Follow the system (light or dark)", "light": "Light", "dark": "Dark"}
        for choice in THEMES:
            button = QRadioButton(labels[choice], self)
            button.setProperty("theme", choice)
            button.setChecked(choice == current)
            self.group.addButton(button)
            layout.addWidget(button)
        layout.addStretch(1)
        self.group.buttonToggled.connect(self._toggled)

    def _toggled(self, button, checked: bool) -> None:
        if checked:
            choice = button.property("theme")
            update_settings(theme=choice)
            theme = current_theme()
            if theme is not None:
                theme.set_choice(choice)


class SettingsDialog(QDialog):
    def __init__(self, database: Path, parent=None):
        super().__init__(parent)
        self.setWindowTitle("clipdesk settings")
        self.resize(760, 520)
        self.tabs = QTabWidget(self)
        self.models = ModelsPage(self)
        self.device = DevicePage(self)
        self.library = LibraryPage(database, self)
        self.appearance = AppearancePage(self)
        self.tabs.addTab(self.models, icon("model"), "Models")
        self.tabs.addTab(self.device, icon("settings"), "Device")
        self.tabs.addTab(self.library, icon("folder"), "Library")
        self.tabs.addTab(self.appearance, icon("photos"), "Appearance")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(buttons)
        style(self)

    def reject(self) -> None:
        # Esc, Close and the title bar's close button all end here (QDialog.closeEvent calls reject()), so
        # this is the one place that hides the dialog; calling close() from here would loop back and
        # leave it open.
        if self.models.process is not None:
            answer = QMessageBox.question(self, "Import running", "A model import is running. Cancel it and close?")
            if answer != QMessageBox.StandardButton.Yes:
                return
            self.models.cancel_import()
        super().reject()
