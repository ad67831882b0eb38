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


def test_a_large_title_gets_its_height_back_and_loses_it_on_restore(qtbot):
    widget = pg.PlotWidget(title="weights = softmax(scores)")
    qtbot.addWidget(widget)
    widget.resize(600, 400)
    widget.show()
    plot = widget.getPlotItem()
    style = PresentationStyle()
    style.apply(widget, 32)
    qtbot.wait(50)
    needed = plot.titleLabel.item.boundingRect().height()
    assert needed > 30
    assert plot.titleLabel.geometry().height() >= needed - 1  # descenders not cut by the 30 px row
    style.restore()
    qtbot.wait(50)
    assert plot.titleLabel.geometry().height() <= 30


def test_a_heatmap_title_spans_the_axis_and_the_colour_bar(qtbot):
    from llmviz.widgets.heatmap import HeatmapPlot

    heatmap = HeatmapPlot()
    qtbot.addWidget(heatmap)
    heatmap.resize(500, 400)
    heatmap.show()
    heatmap.item.setTitle("weights = softmax(scores)")
    qtbot.wait(50)
    title = heatmap.item.titleLabel.geometry()
    assert title.left() <= heatmap.item.getAxis("left").geometry().left() + 1
    assert title.right() >= heatmap.bar.geometry().right() - 1
