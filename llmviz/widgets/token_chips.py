"""Token chips: a text's tokens as coloured boxes that wrap like words.

Painted by one widget (not one QLabel per token), so a text of thousands of tokens lays
out in milliseconds and only the visible chips are drawn.  Neighbouring chips alternate
colours so token boundaries are visible; flagged chips (e.g. split differently by another
tokenizer) get a red frame; special tokens are grey and italic.  Hover shows a tooltip
given per chip; a click emits `sig_clicked(index)`.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

import numpy as np
from PySide6.QtCore import QEvent, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QScrollArea, QSizePolicy, QToolTip, QWidget

ALTERNATE = (QColor("#dbe8f7"), QColor("#fbe3c8"))
SPECIAL = QColor("#e2e2e2")
FLAG_FRAME = QColor("#d0202a")
FLAG_FILL = QColor("#fbd0d2")
SELECTED_FRAME = QColor("#202020")
PAD_X, PAD_Y, GAP = 5, 3, 4


class TokenChips(QWidget):
    """Flow layout of token chips inside a scroll area (use `TokenChips.scrolling()`)."""

    sig_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None, point_size: int = 12) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        font = QFont(self.font())
        font.setPointSize(point_size)
        self.setFont(font)
        self._italic = QFont(font)
        self._italic.setItalic(True)
        self.labels: list[str] = []
        self.tooltip: Callable[[int], str] = lambda _i: ""
        self.flags = np.zeros(0, dtype=bool)
        self.special = np.zeros(0, dtype=bool)
        self.selected = -1
        self._widths: list[int] = []
        self._x: list[float] = []  # chip geometry as plain floats: a relayout of thousands of chips
        self._y: list[float] = []  # (every resize) must not create thousands of Qt objects
        self._w: list[float] = []
        self._row_tops: list[float] = []  # y of each wrapped row
        self._row_first: list[int] = []  # first chip index in each row
        self._laid_out_width = -1
        self._width_cache: dict[tuple[str, bool], int] = {}
        self._metrics = {False: QFontMetrics(font), True: QFontMetrics(self._italic)}

    @classmethod
    def scrolling(cls, parent: QWidget | None = None, point_size: int = 12) -> tuple[TokenChips, QScrollArea]:
        chips = cls(point_size=point_size)
        area = QScrollArea(parent)
        area.setWidgetResizable(True)
        area.setWidget(chips)
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        return chips, area

    def set_tokens(self, labels: Sequence[str], tooltip: Callable[[int], str] | None = None,
                   flags: np.ndarray | None = None, special: np.ndarray | None = None) -> None:
        """Show `labels`; `tooltip(i)` is asked for chip i's hover text only when hovered."""
        n = len(labels)
        self.labels = [s if s else "∅" for s in labels]
        self.tooltip = tooltip or (lambda _i: "")
        self.flags = np.zeros(n, bool) if flags is None else np.asarray(flags, bool)
        self.special = np.zeros(n, bool) if special is None else np.asarray(special, bool)
        self.selected = min(self.selected, n - 1)
        self._measure()

    def _measure(self) -> None:
        """Chip widths for the current labels and font; then lay them out again."""
        self._widths = [self._width(s, sp) for s, sp in zip(self.labels, self.special.tolist(), strict=True)]
        self._laid_out_width = -1
        self._relayout()

    def _width(self, label: str, special: bool) -> int:
        """A chip's width, measured once per distinct piece: a long text repeats a few hundred
        pieces thousands of times, and each Qt text measurement costs microseconds."""
        key = (label, special)
        width = self._width_cache.get(key)
        if width is None:
            metrics = self._metrics[special]
            width = self._width_cache[key] = metrics.horizontalAdvance(label) + 2 * PAD_X
        return width

    def set_selected(self, index: int) -> None:
        self.selected = index
        self.update()

    # -- layout ------------------------------------------------------------------------------
    def _chip_height(self) -> int:
        return QFontMetrics(self.font()).height() + 2 * PAD_Y

    def _relayout(self) -> None:
        width = max(50, self.width())
        if width == self._laid_out_width and len(self._x) == len(self.labels):
            return
        self._laid_out_width = width
        h = self._chip_height()
        widths = np.asarray(self._widths, dtype=float)
        # Greedy wrapping, a row at a time: with ends[k] = the summed advances (width + GAP) of
        # chips 0..k-1, the row starting at chip i holds chips i..m-1 for the largest m with
        # ends[m] - ends[i] <= width - GAP (a chip wider than the row gets a row of its own).
        ends = np.concatenate(([0.0], np.cumsum(widths + GAP)))
        firsts = []
        i, n = 0, len(widths)
        while i < n:
            firsts.append(i)
            m = int(np.searchsorted(ends, ends[i] + width - GAP, side="right")) - 1
            i = max(m, i + 1)
        row_first = np.asarray(firsts, dtype=int)
        row_of = np.repeat(np.arange(len(firsts)), np.diff(np.append(row_first, n)))
        row_tops = GAP + np.arange(len(firsts)) * float(h + GAP)
        self._x = (GAP + ends[:-1] - ends[row_first][row_of]).tolist()
        self._y = row_tops[row_of].tolist()
        self._w = np.minimum(widths, width - 2 * GAP).tolist()
        self._row_tops, self._row_first = row_tops.tolist(), row_first.tolist()
        total = int(GAP + len(firsts) * (h + GAP)) if self.labels else 0
        self.setMinimumHeight(total)
        self.updateGeometry()
        self.update()

    def chip_rect(self, i: int) -> QRectF:
        """Chip i's box."""
        return QRectF(self._x[i], self._y[i], self._w[i], self._chip_height())

    @property
    def rects(self) -> list[QRectF]:
        return [self.chip_rect(i) for i in range(len(self._x))]

    def sizeHint(self) -> QSize:
        return QSize(400, max(self._chip_height() + 2 * GAP, self.minimumHeight()))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._relayout()

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange and hasattr(self, "_metrics"):  # not the one in __init__
            self._italic = QFont(self.font())
            self._italic.setItalic(True)
            self._metrics = {False: QFontMetrics(self.font()), True: QFontMetrics(self._italic)}
            self._width_cache.clear()
            self._measure()

    def index_at(self, x: float, y: float) -> int:
        """The chip under a point, or -1."""
        row = bisect.bisect_right(self._row_tops, y) - 1
        if row < 0:
            return -1
        end = self._row_first[row + 1] if row + 1 < len(self._row_first) else len(self._x)
        h = self._chip_height()
        for i in range(self._row_first[row], end):
            if self._x[i] <= x <= self._x[i] + self._w[i] and self._y[i] <= y <= self._y[i] + h:
                return i
        return -1

    # -- painting and interaction --------------------------------------------------------------
    def paintEvent(self, event) -> None:
        if not self._x:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        clip = event.rect()
        first_row = max(0, bisect.bisect_right(self._row_tops, clip.top() - self._chip_height()) - 1)
        start = self._row_first[first_row] if self._row_first else 0
        for i in range(start, len(self._x)):
            if self._y[i] > clip.bottom():
                break
            rect = self.chip_rect(i)
            if self.special[i]:
                fill, frame, font = SPECIAL, QColor("#9a9a9a"), self._italic
            elif self.flags[i]:
                fill, frame, font = FLAG_FILL, FLAG_FRAME, self.font()
            else:
                fill, frame, font = ALTERNATE[i % 2], ALTERNATE[i % 2].darker(125), self.font()
            pen = QPen(SELECTED_FRAME if i == self.selected else frame, 3 if i == self.selected else (2 if self.flags[i] else 1))
            painter.setPen(pen)
            painter.setBrush(fill)
            painter.drawRoundedRect(rect.adjusted(0.5, 0.5, -0.5, -0.5), 4, 4)
            painter.setPen(QColor("#111111"))
            painter.setFont(font)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.labels[i])
        painter.end()

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            i = self.index_at(event.pos().x(), event.pos().y())  # a QHelpEvent
            text = self.tooltip(i) if i >= 0 else ""
            if text:
                QToolTip.showText(event.globalPos(), text, self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

    def mousePressEvent(self, event) -> None:
        i = self.index_at(event.position().x(), event.position().y())
        if i >= 0 and event.button() == Qt.MouseButton.LeftButton:
            self.set_selected(i)
            self.sig_clicked.emit(i)
        super().mousePressEvent(event)
