"""A FrameTable whose model can highlight whole rows or columns (the loaded model's family, its column).

Imported on first use by the views that need it: frame_table imports pandas.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from .frame_table import DataFrameModel, FrameTable

HIGHLIGHT = QColor("#FFE9B3")


class HighlightModel(DataFrameModel):
    """DataFrameModel with a background and bold font for `highlight_rows` and `highlight_columns`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.highlight_rows: set[int] = set()
        self.highlight_columns: set[str] = set()

    def set_highlight(self, rows: set[int] | None = None, columns: set[str] | None = None) -> None:
        self.highlight_rows = set(rows or ())
        self.highlight_columns = set(columns or ())
        if self.rowCount() and self.columnCount():
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, self.columnCount() - 1))
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, max(0, self.columnCount() - 1))

    def is_highlighted(self, row: int, column: str) -> bool:
        return row in self.highlight_rows or column in self.highlight_columns

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if index.isValid() and self.is_highlighted(index.row(), self.columns[index.column()]):
            if role == Qt.ItemDataRole.BackgroundRole:
                return QBrush(HIGHLIGHT)
            if role == Qt.ItemDataRole.FontRole:
                font = QFont()
                font.setBold(True)
                return font
        return super().data(index, role)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.FontRole
                and self.columns[section] in self.highlight_columns):
            font = QFont()
            font.setBold(True)
            return font
        return super().headerData(section, orientation, role)


def highlight_table(columns: list[str], headers: dict[str, str] | None = None, wrap: bool = False,
                    sortable: bool = False, tooltip: Callable[[Any], str] | None = None) -> FrameTable:
    """A table over a HighlightModel in the frame's own row order (click-to-sort only when `sortable`);
    `wrap` lets long cells (lists of strengths) wrap."""
    table = FrameTable(HighlightModel(columns, headers, tooltip=tooltip))
    table.setWordWrap(wrap)
    table.setSortingEnabled(sortable)
    table.proxy.sort(-1)  # FrameTable starts sorted by column 0, descending; keep the frame's order
    return table
