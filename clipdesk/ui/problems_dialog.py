"""The files and folders the indexer could not read, each with its reason."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHeaderView, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout

from clipdesk.library.pathnames import display_path
from clipdesk.library.records import ErrorRecord
from clipdesk.ui.theme import style


class ProblemsDialog(QDialog):
    def __init__(self, records: list[ErrorRecord], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Photos that could not be indexed")
        self.resize(820, 420)
        intro = QLabel(f"{len(records):,} file{'s' if len(records) != 1 else ''} or folder"
                       f"{'s' if len(records) != 1 else ''} could not be indexed. Files that were busy or "
                       "unreadable are tried again on the next re-index; damaged files once they change.", self)
        intro.setWordWrap(True)
        table = QTreeWidget(self)
        table.setHeaderLabels(["File or folder", "Why"])
        table.setRootIsDecorated(False)
        table.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        table.header().setStretchLastSection(True)
        for record in records:
            item = QTreeWidgetItem([display_path(record.path), record.error])
            item.setToolTip(0, display_path(record.path))
            item.setToolTip(1, record.error)
            table.addTopLevelItem(item)
        table.setColumnWidth(0, 440)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(table, 1)
        layout.addWidget(buttons)
        style(self)
