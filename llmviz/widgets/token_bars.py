"""Per-token bars over the text: one query's attention (or rollout) across the key tokens.

Up to BARS_MAX tokens are drawn as bars; longer rows as one filled step curve (one path,
so 8192 tokens draw as fast as 20).  Token labels on the x axis are thinned to fit; the
query token is marked by a dashed line.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QWidget

from .heatmap import CHAR_PX, MAX_LABEL_CHARS, TICK_FONT_PT, format_value, thin_ticks
from .plot_style import keep_title_size

BARS_MAX = 1024
BAR_COLOR = "#3b6fb6"


class TokenBars(pg.PlotWidget):
    """Bars of one value per shown token, labelled with the tokens."""

    def __init__(self, parent: QWidget | None = None, y_label: str = "attention weight") -> None:
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.item = self.getPlotItem()
        font = QFont("DejaVu Sans", TICK_FONT_PT)
        for side in ("left", "bottom"):
            self.item.getAxis(side).setStyle(tickFont=font)
            self.item.getAxis(side).label.setFont(QFont("DejaVu Sans", TICK_FONT_PT + 1))
        self.item.setLabel("left", y_label)
        self.item.getAxis("left").enableAutoSIPrefix(False)
        self.item.setLabel("bottom", "key token")
        self.item.setMouseEnabled(x=True, y=False)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=BAR_COLOR, pen=None)
        self.curve = pg.PlotDataItem(stepMode="center", fillLevel=0.0, brush=BAR_COLOR, pen=pg.mkPen(BAR_COLOR))
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#c03030", width=2, style=Qt.PenStyle.DashLine))
        for it in (self.bars, self.curve, self.marker):
            self.item.addItem(it)
        self.labels: list[str] = []
        self.values = np.zeros(0, np.float32)
        self.positions = np.zeros(0, np.int64)
        keep_title_size(self.item, f"{TICK_FONT_PT + 1}pt")
        self.item.getViewBox().sigRangeChanged.connect(lambda *_: self._update_ticks())
        self.scene().sigMouseMoved.connect(self._on_hover)

    def set_values(self, values: np.ndarray, labels: Sequence[str], positions: np.ndarray, title: str,
                   marker: int | None = None) -> None:
        """Draw `values` over `labels` (one per shown token at `positions`); mark shown index `marker`."""
        self.values = np.asarray(values, dtype=np.float32)
        self.labels, self.positions = list(labels), np.asarray(positions)
        n = self.values.size
        shown = np.where(np.isfinite(self.values), self.values, 0.0)
        if n <= BARS_MAX:
            self.curve.setData([], [])
            self.bars.setOpts(x=np.arange(n) + 0.5, height=shown, width=0.8)
        else:
            self.bars.setOpts(x=[], height=[])
            self.curve.setData(np.arange(n + 1, dtype=np.float64), shown)
        self.marker.setVisible(marker is not None)
        if marker is not None:
            self.marker.setValue(marker + 0.5)
        self.item.setTitle(title)  # at the size kept in __init__
        top = float(shown.max()) if n else 1.0
        nonzero = np.flatnonzero(shown)
        reach = max(int(nonzero[-1]) if nonzero.size else 0, marker or 0) + 1  # causal rows end at the query
        self.item.setLimits(xMin=-0.5, xMax=n + 0.5)
        self.item.setXRange(0, max(1, reach), padding=0.01)
        self.item.setYRange(0, top if top > 0 else 1.0, padding=0.05)
        self._update_ticks()

    def _update_ticks(self) -> None:
        vb = self.item.getViewBox()
        (x0, x1), _ = vb.viewRange()
        ticks = thin_ticks(self.labels, x0, x1, vb.sceneBoundingRect().width(),
                           lambda n: CHAR_PX * min(n, MAX_LABEL_CHARS) + 12)
        self.item.getAxis("bottom").setTicks([ticks])

    def _on_hover(self, pos) -> None:
        if not self.item.sceneBoundingRect().contains(pos) or self.values.size == 0:
            return
        i = int(np.floor(self.item.getViewBox().mapSceneToView(pos).x()))
        if 0 <= i < self.values.size:
            self.setToolTip(f"{self.labels[i]} [{int(self.positions[i])}]: {format_value(float(self.values[i]))}")
