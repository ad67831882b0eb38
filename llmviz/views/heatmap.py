"""A labelled matrix plot (pyqtgraph) shared by the views that draw token x token maps.

Row-major float32 image with inverted y (row 0 at the top), explicit levels, a colour bar
with a perceptually uniform colour-blind-safe map, token labels on both axes thinned to
what fits at the current zoom, and a hover read-out 'row -> column: value'.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QLabel, QToolTip, QVBoxLayout, QWidget

pg.setConfigOptions(imageAxisOrder="row-major", background="w", foreground="k", antialias=True)

LABEL_PX = 15  # vertical pixels a row label needs
CHAR_PX = 7  # approximate width of one label character


class HeatmapPlot(QWidget):
    """A matrix with labelled axes, colour bar and hover read-out; emits `sig_clicked(row, col)`."""

    sig_clicked = Signal(int, int)
    sig_drawn = Signal()

    def __init__(self, parent: QWidget | None = None, colormap: str = "viridis", bar_label: str = "") -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.item = self.plot.getPlotItem()
        self.item.invertY(True)
        self.item.setAspectLocked(False)
        self.item.showGrid(False, False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.item.addItem(self.image)
        self.bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=pg.colormap.get(colormap), interactive=False,
                                   label=bar_label, width=16)
        self.bar.setImageItem(self.image, insert_in=self.item)
        for side in ("left", "bottom"):
            axis = self.item.getAxis(side)
            axis.setStyle(tickFont=QFont("DejaVu Sans", 8), autoExpandTextSpace=True)
        self.readout = QLabel(" ")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.readout)
        self.matrix = np.zeros((0, 0), np.float32)
        self.row_labels: list[str] = []
        self.col_labels: list[str] = []
        self.row_index: np.ndarray = np.zeros(0, int)
        self.col_index: np.ndarray = np.zeros(0, int)
        self.value_format: Callable[[float], str] = lambda v: f"{v:.4f}"
        self.plot.scene().sigMouseMoved.connect(self._on_hover)
        self.plot.scene().sigMouseClicked.connect(self._on_click)
        self.item.getViewBox().sigRangeChanged.connect(lambda *_: self._update_ticks())

    # -- data ------------------------------------------------------------------------------
    def set_matrix(
        self,
        matrix: np.ndarray,
        row_labels: Sequence[str],
        col_labels: Sequence[str],
        levels: tuple[float, float] | None = None,
        row_index: np.ndarray | None = None,
        col_index: np.ndarray | None = None,
        bar_label: str | None = None,
    ) -> None:
        """Show `matrix` (rows x cols); labels index the rows/columns shown."""
        m = np.ascontiguousarray(matrix, dtype=np.float32)
        finite = m[np.isfinite(m)]
        if levels is None:
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            levels = (lo, hi if hi > lo else lo + 1e-6)
        self.matrix = m
        self.row_labels, self.col_labels = list(row_labels), list(col_labels)
        self.row_index = np.arange(m.shape[0]) if row_index is None else np.asarray(row_index)
        self.col_index = np.arange(m.shape[1]) if col_index is None else np.asarray(col_index)
        # NaN/inf are drawn at the low end of the scale rather than breaking the image.
        shown = np.where(np.isfinite(m), m, levels[0]).astype(np.float32) if finite.size != m.size else m
        self.image.setImage(shown, autoLevels=False, levels=levels)
        self.image.setRect(0, 0, m.shape[1], m.shape[0])
        self.bar.setLevels(levels)
        if bar_label is not None:
            self.bar.axis.setLabel(bar_label)
        self.item.setLimits(xMin=-0.5, xMax=m.shape[1] + 0.5, yMin=-0.5, yMax=m.shape[0] + 0.5)
        self.item.getViewBox().setRange(xRange=(0, m.shape[1]), yRange=(0, m.shape[0]), padding=0.01)
        self._update_ticks()
        self.sig_drawn.emit()

    def clear(self) -> None:
        self.set_matrix(np.zeros((1, 1), np.float32), [""], [""], levels=(0.0, 1.0))

    def set_colormap(self, name: str) -> None:
        self.bar.setColorMap(pg.colormap.get(name))

    # -- axes ------------------------------------------------------------------------------
    def _ticks(self, labels: list[str], lo: float, hi: float, pixels: float, per_label_px: Callable[[int], float]) -> list:
        n = len(labels)
        if n == 0 or pixels <= 0:
            return []
        first, last = max(0, int(math.floor(lo))), min(n - 1, int(math.ceil(hi)))
        visible = max(1, last - first + 1)
        longest = max((len(labels[i]) for i in range(first, last + 1)), default=1)
        step = max(1, math.ceil(visible * per_label_px(longest) / pixels))
        start = first - first % step
        return [(i + 0.5, labels[i]) for i in range(start, last + 1, step) if 0 <= i < n]

    def _update_ticks(self) -> None:
        vb = self.item.getViewBox()
        (x0, x1), (y0, y1) = vb.viewRange()
        rect = vb.sceneBoundingRect()
        xt = self._ticks(self.col_labels, x0, x1, rect.width(), lambda n: CHAR_PX * min(n, 14) + 10)
        yt = self._ticks(self.row_labels, y0, y1, rect.height(), lambda n: LABEL_PX)
        short = lambda t: [(p, s if len(s) <= 14 else s[:13] + "…") for p, s in t]  # noqa: E731
        self.item.getAxis("bottom").setTicks([short(xt)])
        self.item.getAxis("left").setTicks([short(yt)])

    def resizeEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        super().resizeEvent(event)
        self._update_ticks()

    # -- interaction -------------------------------------------------------------------------
    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        if not self.item.sceneBoundingRect().contains(scene_pos) or self.matrix.size == 0:
            return None
        p = self.item.getViewBox().mapSceneToView(scene_pos)
        r, c = int(math.floor(p.y())), int(math.floor(p.x()))
        if 0 <= r < self.matrix.shape[0] and 0 <= c < self.matrix.shape[1]:
            return r, c
        return None

    def describe(self, r: int, c: int) -> str:
        row = self.row_labels[r] if r < len(self.row_labels) else str(r)
        col = self.col_labels[c] if c < len(self.col_labels) else str(c)
        return f"{row} [{int(self.row_index[r])}] -> {col} [{int(self.col_index[c])}]: {self.value_format(float(self.matrix[r, c]))}"

    def _on_hover(self, pos: QPointF) -> None:
        cell = self.cell_at(pos)
        if cell is None:
            return
        text = self.describe(*cell)
        self.readout.setText(text)
        view = self.plot.mapFromScene(pos)
        QToolTip.showText(self.plot.mapToGlobal(view), text, self.plot)

    def _on_click(self, event) -> None:  # type: ignore[no-untyped-def]
        cell = self.cell_at(event.scenePos())
        if cell is not None and event.button() == Qt.MouseButton.LeftButton:
            self.sig_clicked.emit(*cell)

    # -- export ------------------------------------------------------------------------------
    def export(self, path: str) -> None:
        """PNG or SVG (by extension) through pyqtgraph's exporters."""
        from pyqtgraph.exporters import ImageExporter, SVGExporter

        exporter = SVGExporter(self.item) if path.lower().endswith(".svg") else ImageExporter(self.item)
        exporter.export(path)
