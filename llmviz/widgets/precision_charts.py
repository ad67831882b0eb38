"""The quantization dial's charts: cost and quality per precision against bits per weight,
and the hidden-state drift per layer.

Chart items are created once and then shown, moved or hidden, never cleared and re-added:
discarded Qt items left to Python's cyclic GC may be collected on another thread, which
crashes Qt.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRectF, Qt
from PySide6.QtGui import QFont, QPainter, QTextOption
from PySide6.QtWidgets import QLabel

from ..core.quantization_results import PRECISIONS, ModeReport, Precision
from .plot_style import style_plot

COLORS = {
    "fp32": "#1f77b4", "bf16": "#ff7f0e", "fp16": "#2ca02c", "int8": "#d62728", "nf4": "#9467bd",
    "nf4-dq": "#8c564b", "fp4": "#e377c2", "fp4-dq": "#555555", "int2-sim": "#a6a600", "int1-sim": "#17becf",
}
SYMBOLS = {"dtype": "o", "int8": "s", "4bit": "t", "simulated": "o"}
#: Where each chart label sits relative to its point (pyqtgraph TextItem anchors), so that
#: positions sharing a bit width (BF16/FP16, the four 4-bit modes) do not overprint.
ANCHORS = {
    "fp32": (1.1, 0.5), "bf16": (0.5, 1.15), "fp16": (0.5, -0.15), "int8": (-0.1, 0.5), "nf4": (-0.08, 1.0),
    "nf4-dq": (-0.08, 0.0), "fp4": (1.08, 1.0), "fp4-dq": (1.08, 0.0), "int2-sim": (-0.05, -0.1),
    "int1-sim": (-0.05, 1.1),
}


def log_decades(plot: pg.PlotItem, values: list[float]) -> None:
    """A log-scale y range from a whole decade to a whole decade, labelled at the decades only.

    pyqtgraph 0.14 labels every minor log tick (0.2, 0.3, ... overprint); explicit ticks avoid that.
    """
    lo = math.floor(math.log10(min(values)))
    hi = max(math.ceil(math.log10(max(values)) + 0.05), lo + 1)
    plot.setYRange(lo, hi, padding=0.04)
    majors = [(float(d), f"{10.0 ** d:g}" if -4 <= d <= 4 else f"1e{d}") for d in range(lo, hi + 1)]
    minors = [(d + math.log10(k), "") for d in range(lo, hi) for k in range(2, 10)]
    plot.getAxis("left").setTicks([majors, minors])


def render_svg(widget: pg.GraphicsLayoutWidget, path: str) -> None:
    """Qt's own SVG of the charts.

    pyqtgraph 0.14's SVGExporter cannot parse the closed paths ('... Z') that Qt 6.12 writes
    (pyqtgraph issue #3495), so the scene is rendered straight into a QSvgGenerator.
    """
    from PySide6.QtSvg import QSvgGenerator

    source = widget.ci.sceneBoundingRect()
    generator = QSvgGenerator()
    generator.setFileName(path)
    generator.setSize(source.size().toSize())
    generator.setViewBox(QRectF(0, 0, source.width(), source.height()))
    generator.setTitle("llmviz quantization charts")
    painter = QPainter(generator)
    widget.scene().render(painter, QRectF(0, 0, source.width(), source.height()), source)
    painter.end()


class ReflowingCharts(pg.GraphicsLayoutWidget):
    """Three charts in one row when there is room, else in a 2 x 2 grid.

    A row of three in a dock of ~600 px squeezes the first chart to a sliver and cuts the
    third off at the dock's edge.
    """

    ROW_MIN_WIDTH = 780

    def __init__(self) -> None:
        self._plots: list[pg.PlotItem] = []  # set_items() fills them; pyqtgraph resizes before that
        self._legend: pg.LabelItem | None = None
        self._wide = True  # addPlot() lays them out in one row
        super().__init__()

    def set_items(self, plots: list[pg.PlotItem], legend: pg.LabelItem) -> None:
        """The three charts and the legend line that `resizeEvent` rearranges."""
        self._plots, self._legend = plots, legend
        legend.item.document().setDefaultTextOption(QTextOption(Qt.AlignmentFlag.AlignHCenter))  # centred as before

    def resizeEvent(self, event) -> None:
        if self._legend is not None:  # the legend line wraps rather than widen the charts past the view
            self._legend.item.setTextWidth(max(120, event.size().width() - 24))
            self._legend.updateMin()
        wide = self.width() >= self.ROW_MIN_WIDTH
        if self._plots and wide != self._wide:
            self._wide = wide
            layout = self.ci
            for item in (*self._plots, self._legend):
                layout.removeItem(item)
            a, b, c = self._plots
            if wide:
                for column, plot in enumerate(self._plots):
                    layout.addItem(plot, row=0, col=column)
                layout.addItem(self._legend, row=1, col=0, colspan=3)
            else:
                layout.addItem(a, row=0, col=0)
                layout.addItem(b, row=0, col=1)
                layout.addItem(c, row=1, col=0)
                layout.addItem(self._legend, row=2, col=0, colspan=2)  # its one line needs the whole width
            for column in range(3):
                layout.layout.setColumnStretchFactor(column, (13, 10, 10)[column] if wide else (1 if column < 2 else 0))
        super().resizeEvent(event)


class PrecisionMark:
    """One precision's point and label in one chart; shown, moved or hidden, never re-created."""

    def __init__(self, plot: pg.PlotItem, p: Precision, log: bool) -> None:
        color = COLORS[p.key]
        self.x, self.log = math.log2(p.bits), log
        self.point = plot.plot([], [], pen=None, symbol=SYMBOLS[p.kind], symbolSize=13,
                               symbolBrush=None if p.simulated else pg.mkBrush(color), symbolPen=pg.mkPen(color, width=2))
        self.label = pg.TextItem(p.short, color=color, anchor=ANCHORS[p.key])
        self.label.setFont(QFont("DejaVu Sans", 10))
        plot.addItem(self.label)
        self.show_at(None)

    def show_at(self, y: float | None) -> None:
        """Put the point at height `y` (data units), or hide it when None."""
        visible = y is not None
        if visible:
            self.point.setData([self.x], [y])
            self.label.setPos(self.x, math.log10(y) if self.log else y)
        self.point.setVisible(visible)
        self.label.setVisible(visible)


class ChartWords(NamedTuple):
    """One chart's title and left-axis title, on the desktop and presenting (where the long
    ones outgrow a plot that must share a 1280 px row with two others)."""

    title: str
    short_title: str
    axis: str
    short_axis: str

    def for_mode(self, presenting: bool) -> tuple[str, str]:
        return (self.short_title, self.short_axis) if presenting else (self.title, self.axis)


#: The memory, KL and top-1 charts, in that order.
CHART_WORDS = (ChartWords("Memory", "Memory", "MiB (weights + scales)", "MiB"),
               ChartWords("Mean KL vs reference", "Mean KL", "nats (log scale)", "nats"),
               ChartWords("Top-1 agreement", "Top-1", "% of positions", "%"))
#: The empty quality charts' hint, by whether the model is an encoder (no next-token predictions).
HINTS = {False: "Turn the dial:\nevery precision you visit\nadds its point here.",
         True: "No next-token predictions:\nthis model has no\nlanguage-model head."}
#: Presenting: the charts' least height, in lines of text.
PRESENTING_MIN_LINES = 10
HINTS_SHORT = {False: "Turn\nthe dial", True: "No LM\nhead"}


class CostQualityCharts(ReflowingCharts):
    """Memory, mean KL and top-1 agreement of every visited precision, against bits per weight."""

    def __init__(self) -> None:
        super().__init__()
        self.memory_plot = self.addPlot(row=0, col=0)
        self.kl_plot = self.addPlot(row=0, col=1)
        self.top1_plot = self.addPlot(row=0, col=2)
        self._presenting = False
        for plot, words in zip(self._plots_in_order(), CHART_WORDS):
            style_plot(plot, words.title, words.axis, "bits per weight")
        self.kl_plot.setLogMode(y=True)
        for column, stretch in enumerate((13, 10, 10)):  # the memory plot's wider axis gets its room back
            self.ci.layout.setColumnStretchFactor(column, stretch)
        self.top1_plot.setYRange(-8, 108, padding=0)
        for plot in (self.memory_plot, self.kl_plot, self.top1_plot):
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.getAxis("bottom").setTicks([[(math.log2(b), str(b)) for b in (1, 2, 4, 8, 16, 32)]])
            plot.setXRange(-1.0, 6.0, padding=0)  # room for the point labels at both ends
            plot.setMenuEnabled(False)
        self.theory = self.memory_plot.plot([], [], pen=pg.mkPen("#888", width=2, style=Qt.PenStyle.DashLine))
        plots = {"memory": (self.memory_plot, False), "kl": (self.kl_plot, True), "top1": (self.top1_plot, False)}
        self.marks = {(name, p.key): PrecisionMark(plot, p, log) for name, (plot, log) in plots.items() for p in PRECISIONS}
        self._encoder = False
        self.hints: list[pg.TextItem] = []
        for plot, y in ((self.kl_plot, 0.0), (self.top1_plot, 50.0)):
            hint = pg.TextItem("", color="#666", anchor=(0.5, 0.5))
            hint.setFont(QFont("DejaVu Sans", 10))
            hint.setPos(2.5, y)
            plot.addItem(hint)
            self.hints.append(hint)
        legend = self.addLabel(
            "<span style='color:#888'>- - -</span> notebook: parameters × bits ÷ 8 &nbsp; ● measured &nbsp; "
            "○ simulated (stored in fp32)", row=1, col=0, colspan=3, size="10pt")
        self.set_items([self.memory_plot, self.kl_plot, self.top1_plot], legend)

    def draw(self, reports: Mapping[str, ModeReport], trace_id: int | None, num_parameters: int | None) -> None:
        """Place each precision's points; quality points only for reports measured on `trace_id`."""
        if num_parameters is not None:
            bits = np.array([1, 2, 4, 8, 16, 32], float)
            self.theory.setData(np.log2(bits), num_parameters * bits / 8 / 2**20)
        top = num_parameters * 4 / 2**20 if num_parameters is not None else 1.0
        kl_values = []
        for p in PRECISIONS:
            report = reports.get(p.key)
            q = report.comparison if report else None
            current = q is not None and q.trace_id == trace_id and q.has_distributions
            memory = report.costs.memory_bytes / 2**20 if report else None
            kl = q.mean_kl if current and q.mean_kl > 0 and math.isfinite(q.mean_kl) else None
            top1 = q.top1_rate * 100 if current and math.isfinite(q.top1_rate) else None
            self.marks[("memory", p.key)].show_at(memory)
            self.marks[("kl", p.key)].show_at(kl)
            self.marks[("top1", p.key)].show_at(top1)
            top = max(top, memory or 0.0)
            kl_values += [kl] if kl is not None else []
        self.memory_plot.setYRange(0, top * 1.12, padding=0)
        log_decades(self.kl_plot, kl_values or [1e-3, 10.0])  # an empty log axis is labelled at whole decades
        self._encoder = bool(reports) and not any(r.comparison.has_distributions for r in reports.values())
        self._show_hints()
        for hint in self.hints:
            hint.setVisible(not kl_values)

    def set_presentation(self, active: bool) -> None:
        """Presenting: titles, axis titles and hints short enough for three plots in a row at
        presentation's fonts (the lesson's text says what each measures)."""
        self._presenting = active
        for plot, words in zip(self._plots_in_order(), CHART_WORDS):
            title, axis = words.for_mode(active)
            plot.setTitle(title)  # a plot is at least as wide as its title
            plot.getAxis("left").setLabel(axis)
        self._show_hints()
        self._fit_height()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self._fit_height()

    def _fit_height(self) -> None:
        """Presenting, never shorter than a plot needs between its title, tick labels, axis title
        and the legend's lines at this font (a splitter would otherwise squeeze the plots flat)."""
        self.setMinimumHeight(PRESENTING_MIN_LINES * self.fontMetrics().height() if self._presenting else 0)

    def _plots_in_order(self) -> tuple[pg.PlotItem, pg.PlotItem, pg.PlotItem]:
        return self.memory_plot, self.kl_plot, self.top1_plot

    def _show_hints(self) -> None:
        texts = HINTS_SHORT if self._presenting else HINTS
        for hint in self.hints:
            hint.setText(texts[self._encoder])


class DriftChart(pg.PlotWidget):
    """Each measured precision's hidden-state drift per layer (log scale), the shown one thicker."""

    def __init__(self) -> None:
        super().__init__()
        style_plot(self.getPlotItem(), "Hidden-state drift per layer", "‖h − h_ref‖ / ‖h_ref‖ (log)",
                   "layer (0 = embeddings)")
        self.setLogMode(y=True)
        self.setMenuEnabled(False)
        self.curves = {p.key: self.plot([], []) for p in PRECISIONS}
        self.legend = QLabel()
        self.legend.setWordWrap(True)

    def draw(self, reports: Mapping[str, ModeReport], trace_id: int | None, shown_key: str | None,
             num_layers: int | None) -> None:
        """Curves of the reports measured on `trace_id`; `shown_key`'s is bold."""
        drawn: list[float] = []
        legend = []
        for p in PRECISIONS:
            curve = self.curves[p.key]
            report = reports.get(p.key)
            err = report.comparison.hidden_relative_error if report else np.zeros(0)
            layers = np.flatnonzero(err > 0)  # the reference (all 0) and unquantized embeddings are off a log scale
            if report is None or report.comparison.trace_id != trace_id or not layers.size:
                curve.setVisible(False)
                continue
            shown = p.key == shown_key
            curve.setPen(pg.mkPen(COLORS[p.key], width=3.5 if shown else 1.5,
                                  style=Qt.PenStyle.DashLine if p.simulated else Qt.PenStyle.SolidLine))
            curve.setData(layers, err[layers])
            curve.setVisible(True)
            drawn += err[layers].tolist()
            weight = "bold" if shown else "normal"
            legend.append(f"<span style='color:{COLORS[p.key]}; font-weight:{weight}'>"
                          f"{'- -' if p.simulated else '—'} {p.short}</span>")
        self.legend.setText(" &nbsp; ".join(legend))
        plot = self.getPlotItem()
        if drawn:
            log_decades(plot, drawn)
        step = max(1, math.ceil((num_layers + 1) / 10)) if num_layers else 1
        plot.getAxis("bottom").setTickSpacing(step, step)
