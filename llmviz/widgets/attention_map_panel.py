"""An attention map panel: a heatmap computed at screen resolution that fetches a finer region
when zoomed in, and bars over the text for a clicked query.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QSplitter, QWidget

from ..core.attention_results import AttentionMap
from .heatmap import HeatmapPlot
from .token_bars import TokenBars

#: Cells a side of a map: at least MIN_CELLS, at most MAX_CELLS, FALLBACK_CELLS before the view has a size.
MIN_CELLS, MAX_CELLS, FALLBACK_CELLS = 200, 2048, 1024
ZOOM_DEBOUNCE_MS = 150


class AttentionMapPanel(QWidget):
    """A heatmap that fetches a finer region when zoomed, plus bars for a clicked query."""

    sig_region = Signal(object)

    def __init__(self, bar_label: str, bars_label: str) -> None:
        super().__init__()
        self.heatmap = HeatmapPlot(bar_label=bar_label)
        self.heatmap.item.setLabel("left", "query token")
        self.heatmap.item.setLabel("bottom", "key token")
        self.heatmap.plot.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.bars = TokenBars(y_label=bars_label)
        self.bars.setMinimumHeight(170)
        self.bars.setVisible(False)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.heatmap)
        self.splitter.addWidget(self.bars)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.summary = QLabel(" ")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.shown: AttentionMap | None = None
        self.query_unit: int | None = None
        self._zoom = QTimer(self)
        self._zoom.setSingleShot(True)
        self._zoom.setInterval(ZOOM_DEBOUNCE_MS)
        self._zoom.timeout.connect(self._zoomed)
        self.heatmap.sig_range_changed.connect(lambda *_: self._zoom.start())

    def max_cells(self) -> int:
        """The map's size in pixels along its shorter side: more cells than pixels are never seen
        (they would only cost compute, transfer and paint); zooming in fetches them."""
        pixels = min(self.heatmap.view_pixels())
        return min(MAX_CELLS, max(MIN_CELLS, pixels)) if pixels >= MIN_CELLS // 2 else FALLBACK_CELLS

    def _zoomed(self) -> None:
        shown = self.shown
        if shown is None or shown.block == 1:
            return
        region = self.heatmap.visible_region()
        n = shown.positions.size
        if region == (0, n, 0, n) or region[1] <= region[0] or region[3] <= region[2]:
            self.heatmap.clear_detail()
            return
        self.sig_region.emit(region)

    def draw(self, result: AttentionMap, labels: list[str], bar_label: str) -> None:
        keep_view = self.shown is not None and np.array_equal(self.shown.positions, result.positions)
        names = [labels[p] for p in result.positions]
        finite = result.matrix[np.isfinite(result.matrix)]
        top = float(finite.max()) if finite.size else 1.0
        self.heatmap.reduce_name = result.reduce
        self.heatmap.set_matrix(result.matrix, names, names, levels=(0.0, max(top, 1e-6)),
                                row_index=result.positions, col_index=result.positions, bar_label=bar_label,
                                block=result.block, keep_view=keep_view)
        self.shown = result
        if not keep_view:
            self.query_unit = None
            self.bars.setVisible(False)
        if keep_view and result.block > 1:
            self._zoom.start()  # the zoomed region of the previous map: fetch it for this one

    def draw_detail(self, result: AttentionMap) -> None:
        r0, r1, c0, c1 = result.region
        self.heatmap.set_detail(result.matrix, r0, c0, result.block)
        base = self.summary.text().split(" · zoomed", 1)[0]
        what = "exact values" if result.block == 1 else f"{result.reduce} over {result.block}×{result.block}"
        pos = result.positions
        self.summary.setText(f"{base} · zoomed to queries {pos[r0]}–{pos[r1 - 1]} × keys {pos[c0]}–{pos[c1 - 1]}: {what}")

    def show_bars(self) -> None:
        if not self.bars.isVisible():
            self.bars.setVisible(True)
            total = max(400, self.splitter.height())
            self.splitter.setSizes([total - 220, 220])

    def resolution_text(self, result: AttentionMap) -> str:
        if result.block == 1:
            return "exact values"
        return f"each cell = {result.reduce} over {result.block}×{result.block} tokens (zoom in for exact values)"
