"""Faithfulness curves: f after removing the top-k % tokens of each ranking (comprehensiveness),
with the areas in the legend; the random ranking is the dashed grey yardstick."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QWidget

from .heatmap import TICK_FONT_PT

COLOURS = {"gxi": "#d62728", "ig": "#1f77b4", "occlusion": "#2ca02c", "rollout": "#9467bd", "vnorm": "#ff7f0e",
           "random": "#888888"}


class FaithfulnessPlot(pg.PlotWidget):
    """One curve per method over the fraction of tokens removed (or kept)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.setBackground("w")
        self.item = self.getPlotItem()
        font = QFont("DejaVu Sans", TICK_FONT_PT)
        for side in ("left", "bottom"):
            self.item.getAxis(side).setStyle(tickFont=font)
        self.item.setLabel("bottom", "top tokens removed (%)")
        self.item.setLabel("left", "f")
        self.item.showGrid(x=True, y=True, alpha=0.2)
        self.legend = self.item.addLegend(offset=(-10, 10), labelTextSize="9pt")
        self.curves: dict[str, np.ndarray] = {}

    def set_curves(self, faithfulness: dict, kept: bool = False, score_name: str = "f") -> None:
        """Draw each Faithfulness's `removed` (or `kept`) curve; the legend carries its area."""
        self.item.clear()
        self.legend.clear()
        self.curves = {}
        self.item.setLabel("bottom", "top tokens kept (%)" if kept else "top tokens removed (%)")
        self.item.setLabel("left", score_name)
        for name, faith in faithfulness.items():
            values = np.asarray(faith.kept if kept else faith.removed, dtype=np.float64)
            area = faith.sufficiency if kept else faith.comprehensiveness
            dashed = name == "random"
            pen = pg.mkPen(COLOURS.get(name, "#000"), width=2,
                           style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
            x = np.asarray(faith.fractions) * 100
            self.item.plot(x, values, pen=pen, symbol="o", symbolSize=5, symbolBrush=COLOURS.get(name, "#000"),
                           name=f"{name}  {'suff' if kept else 'comp'} {area:+.3f}")
            self.curves[name] = values
