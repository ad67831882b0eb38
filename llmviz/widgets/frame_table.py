"""A read-only, sortable Qt table over a pandas DataFrame.

Qt asks only for the cells it shows; `formatters` turn raw values into display text
while sorting still uses the raw values (numbers sort as numbers, NaN last).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
)
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QAbstractItemView, QApplication, QHeaderView, QTableView, QWidget

if TYPE_CHECKING:  # pandas is imported when a table or CSV is made, not at start-up
    import pandas as pd

Index = QModelIndex | QPersistentModelIndex
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


def _missing(value: Any) -> bool:
    import pandas as pd

    if isinstance(value, np.datetime64):
        return bool(np.isnat(value))
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


class DataFrameModel(QAbstractTableModel):
    """Shows `frame[columns]`; `headers` renames columns, `formatters` format cells, `tooltips` explain rows.

    `sort_by` maps a shown column to the column whose raw values order it (e.g. a date
    written at month precision sorts by the underlying timestamp).
    """

    def __init__(self, columns: list[str], headers: Mapping[str, str] | None = None,
                 formatters: Mapping[str, Callable[[Any], str]] | None = None,
                 tooltip: Callable[[pd.Series], str] | None = None,
                 sort_by: Mapping[str, str] | None = None) -> None:
        import pandas as pd

        super().__init__()
        self.frame = pd.DataFrame(columns=columns)
        self.columns = columns
        self.headers = dict(headers or {})
        self.formatters = dict(formatters or {})
        self.tooltip = tooltip
        self.sort_by = dict(sort_by or {})
        self._columns: dict[str, Any] = {}
        self._numeric: set[str] = set()

    def set_frame(self, frame: pd.DataFrame) -> None:
        """Show `frame`; its columns are kept as numpy arrays because Qt asks for cells one at a time."""
        import pandas as pd

        self.beginResetModel()
        self.frame = frame.reset_index(drop=True)
        needed = set(self.columns) | set(self.sort_by.values())
        self._columns = {c: self.frame[c].to_numpy() for c in needed if c in self.frame.columns}
        self._numeric = {c for c in needed if c in self.frame.columns
                         and pd.api.types.is_numeric_dtype(self.frame[c].dtype)}
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.frame)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            if orientation == Qt.Orientation.Horizontal:
                name = self.columns[section]
                return self.headers.get(name, name)
            return str(section + 1)
        return None

    def text(self, row: int, column: str) -> str:
        value = self._columns[column][row]
        if column in self.formatters:
            return self.formatters[column](value)
        return "" if _missing(value) else str(value)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        import pandas as pd

        if not index.isValid():
            return None
        row, column = index.row(), self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(row, column)
        if role == SORT_ROLE:
            value = self._columns[self.sort_by.get(column, column)][row]
            if _missing(value):
                return None
            if isinstance(value, pd.Timestamp):
                return value.value
            if isinstance(value, np.datetime64):
                return int(value.astype("datetime64[ns]").astype(np.int64))
            return value.item() if hasattr(value, "item") else value
        if role == Qt.ItemDataRole.ToolTipRole and self.tooltip is not None:
            return self.tooltip(self.frame.iloc[row])
        if role == Qt.ItemDataRole.TextAlignmentRole and column in self._numeric:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class _SortProxy(QSortFilterProxyModel):
    """Sorts on raw values; missing values go last in ascending order."""

    def lessThan(self, left: Index, right: Index) -> bool:
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        if a is None or b is None:
            return a is not None
        try:
            return a < b
        except TypeError:
            return str(a) < str(b)


class FrameTable(QTableView):
    """A QTableView wired to a DataFrameModel through a sorting proxy."""

    def __init__(self, model: DataFrameModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.frame_model = model
        self.proxy = _SortProxy()
        self.proxy.setSourceModel(model)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.setAlternatingRowColors(True)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setWordWrap(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.horizontalHeader().setStretchLastSection(True)
        self.verticalHeader().setVisible(False)
        self._fit_lines = 0.0  # fit_columns' limit in lines of text, 0: never fitted
        self._fit_rows = False
        self._min_rows = 0
        self._refit = QTimer(self)  # after the new font has reached the headers and rows
        self._refit.setSingleShot(True)
        self._refit.setInterval(0)
        self._refit.timeout.connect(self._refit_now)

    def source_row(self, view_row: int) -> int:
        return self.proxy.mapToSource(self.proxy.index(view_row, 0)).row()

    def select_source_row(self, row: int) -> None:
        index = self.proxy.mapFromSource(self.frame_model.index(row, 0))
        if index.isValid():
            self.selectRow(index.row())
            self.scrollTo(index)

    def fit_columns(self, max_px: int = 420) -> None:
        """Columns as wide as their contents, none wider than `max_px` at the application's font,
        in proportion at this table's (presentation mode's larger font, now or later)."""
        self._fit_lines = max_px / max(1, QFontMetrics(QApplication.font()).height())
        self._fit_columns(round(self._fit_lines * self.fontMetrics().height()))

    def _fit_columns(self, max_px: int) -> None:
        self.resizeColumnsToContents()
        header = self.horizontalHeader()
        for i in range(header.count()):
            header.resizeSection(i, min(header.sectionSize(i), max_px))

    def fit_height(self) -> None:
        """Exactly as tall as the header and the rows (no empty band, no hidden row), and again
        whenever the font changes."""
        self._fit_rows = True
        self.resizeRowsToContents()
        self.setFixedHeight(self._chrome_height() + sum(self.rowHeight(r) for r in range(self.model().rowCount())))

    def keep_rows_visible(self, rows: int) -> None:
        """Never shorter than the header and `rows` rows (a splitter or layout may give more),
        at this font and again whenever it changes."""
        self._min_rows = rows
        self._refit_now()

    def _chrome_height(self) -> int:
        """The header, the frame and the horizontal scroll bar: the height around the rows."""
        height = self.horizontalHeader().sizeHint().height() + 2 * self.frameWidth()
        if self.horizontalScrollBarPolicy() != Qt.ScrollBarPolicy.ScrollBarAlwaysOff:
            height += self.horizontalScrollBar().sizeHint().height()
        return height

    def _rows_height(self, rows: int) -> int:
        return self._chrome_height() + rows * max(self.verticalHeader().defaultSectionSize(), self.fontMetrics().height() + 6)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange) and \
                (self._fit_lines or self._fit_rows or self._min_rows):
            self._refit.start()

    def _refit_now(self) -> None:
        if self._fit_lines:
            self._fit_columns(round(self._fit_lines * self.fontMetrics().height()))
        if self._fit_rows:
            self.fit_height()
        if self._min_rows:
            self.setMinimumHeight(self._rows_height(self._min_rows))
