"""Presentation style on pyqtgraph axes: restyling at another size, or restoring, leaves every
axis free to take its plot's length (a fixed-height vertical axis drew its ticks in a strip)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt

from llmviz.widgets.presentation_style import PresentationStyle


def _lengths(plot: pg.PlotItem) -> tuple[float, float, float, float]:
    view = plot.getViewBox().geometry()
    return (plot.getAxis("left").geometry().height(), view.height(),
            plot.getAxis("bottom").geometry().width(), view.width())


def test_axes_follow_their_plot_after_restyle_and_restore(qtbot):
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    widget.show()
    plot = widget.getPlotItem()
    plot.plot([0, 1, 2], [3, 1, 2])
    style = PresentationStyle()
    style.apply(widget, 24)
    style.apply(widget, 32)  # the window grew: restored, then styled again
    for _ in range(2):
        qtbot.wait(50)
        left, height, bottom, width = _lengths(plot)
        assert left == height and bottom == width
        assert plot.getAxis("left").effectiveSizeHint(Qt.SizeHint.MaximumSize).height() > 10_000
        style.restore()
