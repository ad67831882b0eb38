"""Scaling-laws dock: the published Kaplan (2020) and Chinchilla (2022) fits, drawn live.

Three log sliders pick a model size N, a number of training tokens D and a compute
budget C.  Four plots: loss against N, against D and against C, and the N-D plane with
the Chinchilla compute-optimal line, lines of equal compute and the models of the
timeline whose training tokens were published.  The loaded model is placed by its
parameter count (and its training tokens when the timeline lists them).  The formulas
and constants live in llmviz.core.scaling (numpy only, cheap enough to redraw on every
slider step on the GUI thread).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSplitter,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from ..core.scaling import CHINCHILLA, CITATIONS, KAPLAN, PF_DAY, log_grid, training_compute
from ..core.specs import ModelInfo
from ..widgets.layouts import column, fill, vertical_scroll
from ..widgets.plot_export import export_plot, save_with_dialog, write_csv
from ..widgets.plot_style import CountAxis, human_count, style_plot
from .base import DockView

if TYPE_CHECKING:
    from ..core.timeline import LoadedPoint, Timeline

KAPLAN_PEN = pg.mkPen("#0072B2", width=3, style=Qt.PenStyle.DashLine)
CHINCHILLA_PEN = pg.mkPen("#E69F00", width=3.5)
OPTIMAL_PEN = pg.mkPen("#009E73", width=3.5)
SLIDER_PEN = pg.mkPen("#444444", width=1.5, style=Qt.PenStyle.DotLine)
LOADED_COLOR = "#D55E00"
POINT_BRUSH = pg.mkBrush("#E69F00")
RANGES = {"N": (6.0, 13.0), "D": (8.0, 14.0), "C": (17.0, 27.0)}  # log10 ranges of the sliders
STEPS_PER_DECADE = 100
LOSS_RANGE = (0.9, 5.0)
LOSS_TITLE = "loss (nats/token)"


class LogSlider(QWidget):
    """A horizontal slider over log10(value) with a caption and a live value label."""

    def __init__(self, caption: str, lo: float, hi: float, value: float, fmt: Callable[[float], str]) -> None:
        super().__init__()
        self.fmt = fmt
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(int(lo * STEPS_PER_DECADE), int(hi * STEPS_PER_DECADE))
        self.slider.setValue(int(round(math.log10(value) * STEPS_PER_DECADE)))
        self.slider.setMinimumWidth(90)
        self.caption = QLabel(caption)
        self.caption.setStyleSheet("font-size: 12pt;")
        self.value_label = QLabel()
        self.value_label.setStyleSheet("font-size: 12pt; font-weight: bold;")
        self.value_label.setMinimumWidth(80)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.value_label)
        self.slider.valueChanged.connect(self._update_label)
        self._update_label()

    @property
    def value(self) -> float:
        return 10.0 ** (self.slider.value() / STEPS_PER_DECADE)

    def set_value(self, value: float) -> None:
        lo, hi = self.slider.minimum(), self.slider.maximum()
        self.slider.setValue(min(hi, max(lo, int(round(math.log10(value) * STEPS_PER_DECADE)))))

    def _update_label(self) -> None:
        self.value_label.setText(self.fmt(self.value))


def _ratio(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _flops(value: float) -> str:
    return f"{value:.2g} FLOPs".replace("e+", "e")


class ScalingView(DockView):
    NAME = "scaling"
    TITLE = "Scaling laws"
    AREA = Qt.DockWidgetArea.RightDockWidgetArea
    NEEDS_TRACE = False
    STATE = ("n_slider.slider", "d_slider.slider", "c_slider.slider")

    def __init__(self, host, parent=None) -> None:
        super().__init__(host, parent)
        self.timeline: Timeline | None = None
        self.loaded: LoadedPoint | None = None
        self.n_slider = LogSlider("Parameters N", *RANGES["N"], 70e9, lambda v: human_count(v))
        self.d_slider = LogSlider("Tokens D", *RANGES["D"], 1.4e12, lambda v: human_count(v))
        self.c_slider = LogSlider("Compute C", *RANGES["C"], 5.76e23, _flops)
        self._build()
        self.redraw()
        self.show_content()

    # -- construction -----------------------------------------------------------------------------
    def _build(self) -> None:
        use_loaded = QPushButton("Use the loaded model")
        use_loaded.setToolTip("Set N (and D, when the timeline lists its training tokens) to the loaded model")
        use_loaded.clicked.connect(self.use_loaded_model)
        optimal = QPushButton("N, D optimal for C")
        optimal.setToolTip("Set N and D to Chinchilla's compute-optimal split of the budget C")
        optimal.clicked.connect(self.use_optimal)
        match_c = QPushButton("C = 6ND")
        match_c.setToolTip("Set the budget C to the training compute of the chosen N and D")
        match_c.clicked.connect(lambda: self.c_slider.set_value(float(training_compute(self.n, self.d))))
        export_csv = QPushButton("Export CSV…")
        export_csv.clicked.connect(lambda: self._ask_path("Export the curves", "scaling.csv", "CSV (*.csv)", self.export_csv))
        export_image = QPushButton("Export image…")
        export_image.clicked.connect(lambda: self._ask_path("Export the plots", "scaling.png",
                                                            "PNG image (*.png);;SVG image (*.svg)", self.export_image))
        sliders = QGridLayout()
        sliders.addWidget(self.n_slider, 0, 0)
        sliders.addWidget(self.d_slider, 0, 1)
        sliders.addWidget(self.c_slider, 0, 2)
        buttons = QHBoxLayout()
        for b in (use_loaded, optimal, match_c):
            buttons.addWidget(b)
        buttons.addStretch(1)
        for b in (export_csv, export_image):
            buttons.addWidget(b)
        for s in (self.n_slider, self.d_slider, self.c_slider):
            s.slider.valueChanged.connect(self.redraw)

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.p_n = self._plot(0, 0, "Loss vs parameters", "parameters N", CountAxis("bottom"))
        self.p_d = self._plot(0, 1, "Loss vs training tokens", "training tokens D", CountAxis("bottom"))
        self.p_c = self._plot(1, 0, "Loss vs training compute", "compute C (FLOPs)", CountAxis("bottom", powers=True))
        self.p_nd = self.graphics.addPlot(1, 1, axisItems={"bottom": CountAxis("bottom"), "left": CountAxis("left")})
        style_plot(self.p_nd, "Parameters vs tokens", left="training tokens D", bottom="parameters N")
        self.p_nd.setMenuEnabled(False)
        self._make_items()

        self.readout = QLabel()
        self.readout.setWordWrap(True)
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        self.readout.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.readout.setStyleSheet("font-size: 12pt; padding: 2px;")
        self.citations = QLabel("<p>" + "</p><p>".join(html.escape(c) for c in CITATIONS) + "</p>")
        self.citations.setWordWrap(True)
        self.citations.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.citations.setStyleSheet("font-size: 10pt; color: #333;")
        side = column(self.readout, None, self.citations, margins=(6, 0, 0, 0))
        side_scroll = vertical_scroll(side)  # in a short dock the wrapped read-out and citations scroll instead of overlapping
        side_scroll.setMinimumWidth(300)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.graphics)
        splitter.addWidget(side_scroll)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([820, 360])
        fill(QVBoxLayout(self.content), sliders, buttons, self._shared_legend(), (splitter, 1), margins=4)
        self.graphics.scene().sigMouseMoved.connect(self._on_hover)

    def _shared_legend(self) -> QLabel:
        """One legend line above the four plots, for presentation mode: its large legends inside
        the small plots covered the curves and one another."""
        def entry(colour: str, glyph: str, text: str) -> str:
            words = "&nbsp;".join(html.escape(w) for w in text.split())  # an entry never breaks inside
            return f"<span style='color:{colour}; font-weight:bold'>{glyph}</span>&nbsp;{words}"
        entries = [entry(KAPLAN_PEN.color().name(), "╍╍", "Kaplan L(N), L(D), L(C)"),
                   entry(CHINCHILLA_PEN.color().name(), "━━", "Chinchilla L(N, D)"),
                   entry(OPTIMAL_PEN.color().name(), "━━", "Chinchilla optimum"),
                   entry(POINT_BRUSH.color().name(), "●", "chosen N, D"),
                   entry("#009E73", "◆", "optimum for C"),
                   entry("#7F7F7F", "●", "models"),
                   entry(LOADED_COLOR, "★", "loaded model")]
        self.legend_line = QLabel(" &nbsp; ".join(entries))
        self.legend_line.setObjectName("scalingLegend")
        self.legend_line.setWordWrap(True)
        self.legend_line.setTextFormat(Qt.TextFormat.RichText)
        self.legend_line.hide()
        return self.legend_line

    def set_presentation(self, active: bool) -> None:
        """Presenting: the shared legend line instead of the four legends inside the plots, axis
        titles short enough for the plots' height in presentation's fonts, and the loaded
        model's star without the line's long "loaded: …" label (the legend line names the star)."""
        super().set_presentation(active)
        for plot in (self.p_n, self.p_d, self.p_c, self.p_nd):
            if plot.legend is not None:
                plot.legend.setVisible(not active)
        self.legend_line.setVisible(active)
        for plot in (self.p_n, self.p_d, self.p_c):
            plot.getAxis("left").setLabel("loss" if active else LOSS_TITLE)
        self.p_nd.getAxis("left").setLabel("tokens D" if active else "training tokens D")
        self.loaded_line.label.setVisible(not active)

    def _plot(self, row: int, col: int, title: str, bottom: str, axis: CountAxis) -> pg.PlotItem:
        plot = self.graphics.addPlot(row, col, axisItems={"bottom": axis})
        style_plot(plot, title, left=LOSS_TITLE, bottom=bottom)
        plot.setMenuEnabled(False)
        plot.setYRange(*LOSS_RANGE, padding=0)
        plot.addLegend(offset=(-8, 8), labelTextSize="10pt", brush=pg.mkBrush(255, 255, 255, 220))
        return plot

    def _make_items(self) -> None:
        """Create every curve and marker once; redraw only sets their data."""
        ns, ds, cs = log_grid(1e6, 1e13), log_grid(1e8, 1e14), log_grid(1e17, 1e27)
        self.grid = {"N": ns, "D": ds, "C": cs}
        self.p_n.plot(np.log10(ns), KAPLAN.loss_n(ns), pen=KAPLAN_PEN, name="Kaplan L(N)")
        self.curve_n = self.p_n.plot(pen=CHINCHILLA_PEN, name="Chinchilla L(N, D)")
        self.p_d.plot(np.log10(ds), KAPLAN.loss_d(ds), pen=KAPLAN_PEN, name="Kaplan L(D)")
        self.curve_d = self.p_d.plot(pen=CHINCHILLA_PEN, name="Chinchilla L(N, D)")
        self.p_c.plot(np.log10(cs), KAPLAN.loss_c(cs), pen=KAPLAN_PEN, name="Kaplan L(C)")
        self.p_c.plot(np.log10(cs), CHINCHILLA.frontier_loss(cs), pen=OPTIMAL_PEN, name="Chinchilla optimum L*(C)")
        legend = self.p_nd.addLegend(offset=(-8, -8), labelTextSize="10pt", brush=pg.mkBrush(255, 255, 255, 220))
        n_line = log_grid(1e6, 1e13)
        self.p_nd.plot(np.log10(n_line), np.log10(CHINCHILLA.optimal_tokens(n_line)), pen=OPTIMAL_PEN,
                       name="optimal D(N)")
        self._iso_compute_lines()
        self.cursor = {key: pg.InfiniteLine(angle=90, pen=SLIDER_PEN) for key in ("N", "D", "C")}
        for key, plot in (("N", self.p_n), ("D", self.p_d), ("C", self.p_c)):
            plot.addItem(self.cursor[key])
        self.point_n = self._marker(self.p_n, "o", POINT_BRUSH)
        self.point_d = self._marker(self.p_d, "o", POINT_BRUSH)
        self.point_c = self._marker(self.p_c, "o", POINT_BRUSH)
        self.point_opt = self._marker(self.p_c, "d", pg.mkBrush("#009E73"))
        self.point_nd = self._marker(self.p_nd, "o", POINT_BRUSH)
        self.point_nd_opt = self._marker(self.p_nd, "d", pg.mkBrush("#009E73"))
        self.models_nd = pg.ScatterPlotItem(size=9, brush=pg.mkBrush("#7F7F7F"), pen=pg.mkPen("#FFFFFF"))
        self.p_nd.addItem(self.models_nd)
        legend.addItem(self.models_nd, "models (hover)")
        legend.addItem(self.point_nd, "chosen N, D")
        legend.addItem(self.point_nd_opt, "optimum for C")
        self.loaded_items = [self._marker(p, "star", pg.mkBrush(LOADED_COLOR), size=24) for p in
                             (self.p_n, self.p_d, self.p_c, self.p_nd)]
        self.loaded_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(LOADED_COLOR, width=2, style=Qt.PenStyle.DashLine),
                                           label="loaded", labelOpts={"position": 0.06, "color": LOADED_COLOR,
                                                                      "fill": pg.mkBrush(255, 255, 255, 200)})
        self.loaded_line.setVisible(False)
        self.p_n.addItem(self.loaded_line)
        for plot, rng in ((self.p_n, RANGES["N"]), (self.p_d, RANGES["D"]), (self.p_c, RANGES["C"])):
            plot.setXRange(*rng, padding=0.01)
        self.p_nd.setXRange(*RANGES["N"], padding=0.01)
        self.p_nd.setYRange(*RANGES["D"], padding=0.01)

    def _iso_compute_lines(self) -> None:
        """Dashed lines of equal training compute C = 6ND in the N-D plane, labelled."""
        n = np.array([10 ** RANGES["N"][0], 10 ** RANGES["N"][1]])
        for exponent in range(19, 28, 2):
            d = 10.0 ** exponent / (6 * n)
            self.p_nd.plot(np.log10(n), np.log10(d), pen=pg.mkPen("#AAAAAA", width=1, style=Qt.PenStyle.DashLine))
            # label where the line crosses the middle of the D range
            d_mid = 10 ** 11.5
            n_at = 10.0 ** exponent / (6 * d_mid)
            if RANGES["N"][0] < math.log10(n_at) < RANGES["N"][1]:
                text = pg.TextItem(f"1e{exponent} FLOPs", color="#777777", anchor=(0.5, 0.5), angle=-38)
                text.setPos(math.log10(n_at), 11.5)
                self.p_nd.addItem(text)

    @staticmethod
    def _marker(plot: pg.PlotItem, symbol: str, brush: pg.QtGui.QBrush, size: int = 13) -> pg.ScatterPlotItem:
        item = pg.ScatterPlotItem(symbol=symbol, size=size, brush=brush, pen=pg.mkPen("#000000", width=1.2))
        item.setZValue(10)
        plot.addItem(item)
        return item

    # -- state ------------------------------------------------------------------------------------
    @property
    def n(self) -> float:
        return self.n_slider.value

    @property
    def d(self) -> float:
        return self.d_slider.value

    @property
    def c(self) -> float:
        return self.c_slider.value

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._ensure_timeline()

    def _ensure_timeline(self) -> None:
        if self.timeline is None:
            from ..core.timeline import load_timeline

            self.timeline = load_timeline()
            self._draw_timeline_models()

    def _draw_timeline_models(self) -> None:
        frame = self.timeline.frame
        known = frame[frame["parameters"].notna() & frame["training_tokens"].notna()
                      & (frame["family"] != "word embeddings")]
        self.nd_models = known
        self.models_nd.setData(np.log10(known["parameters"].to_numpy(float)),
                               np.log10(known["training_tokens"].to_numpy(float)))

    def model_changed(self, info: ModelInfo) -> None:
        from ..core.timeline import place_loaded_model

        self._ensure_timeline()
        self.loaded = place_loaded_model(self.timeline, info)
        self.use_loaded_model()
        self.redraw()
        self.mark_ready()

    def use_loaded_model(self) -> None:
        if self.loaded is None:
            return
        self.n_slider.set_value(self.loaded.parameters)
        if math.isfinite(self.loaded.training_tokens):
            self.d_slider.set_value(self.loaded.training_tokens)
            self.c_slider.set_value(float(training_compute(self.loaded.parameters, self.loaded.training_tokens)))

    def use_optimal(self) -> None:
        n_opt, d_opt = CHINCHILLA.optimal(self.c)
        self.n_slider.set_value(float(n_opt))
        self.d_slider.set_value(float(d_opt))

    # -- drawing ------------------------------------------------------------------------------------
    def redraw(self) -> None:
        n, d, c = self.n, self.d, self.c
        ns, ds = self.grid["N"], self.grid["D"]
        self.curve_n.setData(np.log10(ns), CHINCHILLA.loss(ns, d))
        self.curve_d.setData(np.log10(ds), CHINCHILLA.loss(n, ds))
        loss = float(CHINCHILLA.loss(n, d))
        compute = float(training_compute(n, d))
        n_opt, d_opt = (float(v) for v in CHINCHILLA.optimal(c))
        for key, value in (("N", n), ("D", d), ("C", c)):
            self.cursor[key].setValue(math.log10(value))
        self.point_n.setData([math.log10(n)], [loss])
        self.point_d.setData([math.log10(d)], [loss])
        self.point_c.setData([math.log10(compute)], [loss])
        self.point_opt.setData([math.log10(c)], [float(CHINCHILLA.frontier_loss(c))])
        self.point_nd.setData([math.log10(n)], [math.log10(d)])
        self.point_nd_opt.setData([math.log10(n_opt)], [math.log10(d_opt)])
        self._draw_loaded()
        self.readout.setText(self.summary(n, d, c, loss, compute, n_opt, d_opt))

    def _draw_loaded(self) -> None:
        p = self.loaded
        if p is None:
            return
        has_tokens = math.isfinite(p.training_tokens)
        self.loaded_line.setValue(math.log10(p.parameters))
        self.loaded_line.label.setFormat(f"loaded: {p.label}")
        self.loaded_line.setVisible(True)
        star_n, star_d, star_c, star_nd = self.loaded_items
        if has_tokens:
            loss = float(CHINCHILLA.loss(p.parameters, p.training_tokens))
            star_n.setData([math.log10(p.parameters)], [loss])
            star_d.setData([math.log10(p.training_tokens)], [loss])
            star_c.setData([math.log10(float(training_compute(p.parameters, p.training_tokens)))], [loss])
            star_nd.setData([math.log10(p.parameters)], [math.log10(p.training_tokens)])
        else:
            for star in self.loaded_items:
                star.setData([], [])

    def summary(self, n: float, d: float, c: float, loss: float, compute: float, n_opt: float, d_opt: float) -> str:
        """The numbers behind the markers, as rich text."""
        lines = [
            f"<b>N = {human_count(n)}, D = {human_count(d)}</b> ({_ratio(d / n)} tokens per parameter): "
            f"Chinchilla L(N, D) = <b>{loss:.3f}</b> nats/token · Kaplan L(N) = {float(KAPLAN.loss_n(n)):.3f}, "
            f"L(D) = {float(KAPLAN.loss_d(d)):.3f} · training compute 6ND = {compute:.3g} FLOPs "
            f"({compute / PF_DAY:.3g} PF-days)".replace("e+", "e"),
            f"<b>Budget C = {c:.3g} FLOPs</b>: Chinchilla optimum N = {human_count(n_opt)}, D = {human_count(d_opt)} "
            f"({_ratio(d_opt / n_opt)} tokens per parameter), L* = {float(CHINCHILLA.frontier_loss(c)):.3f} · "
            f"Kaplan L(C) = {float(KAPLAN.loss_c(c)):.3f}".replace("e+", "e"),
        ]
        p = self.loaded
        if p is not None:
            tokens = (f", {human_count(p.training_tokens)} training tokens (timeline)"
                      if math.isfinite(p.training_tokens) else ", training tokens unknown (not in the timeline data)")
            lines.append(f"<span style='color:{LOADED_COLOR}'>★ loaded: {html.escape(p.label)}, "
                         f"{human_count(p.parameters)} parameters (from the {p.parameters_from}){tokens}</span>")
        return "<p>" + "</p><p>".join(lines) + "</p>"

    # -- hover over the timeline models in the N-D plane ----------------------------------------------------
    def _on_hover(self, pos: QPointF) -> None:
        if self.timeline is None or not self.p_nd.sceneBoundingRect().contains(pos):
            return
        vb = self.p_nd.getViewBox()
        best, best_d = None, 12.0 ** 2
        for i, (n, d) in enumerate(zip(self.nd_models["parameters"], self.nd_models["training_tokens"])):
            p = vb.mapViewToScene(QPointF(math.log10(n), math.log10(d)))
            dist = (p.x() - pos.x()) ** 2 + (p.y() - pos.y()) ** 2
            if dist < best_d:
                best, best_d = i, dist
        if best is None:
            return
        row = self.nd_models.iloc[best]
        n, d = float(row["parameters"]), float(row["training_tokens"])
        text = (f"{row['name']}: {human_count(n)} parameters, {human_count(d)} tokens ({_ratio(d / n)} per parameter), "
                f"6ND = {float(training_compute(n, d)):.3g} FLOPs, Chinchilla L = {float(CHINCHILLA.loss(n, d)):.3f}")
        QToolTip.showText(self.graphics.mapToGlobal(self.graphics.mapFromScene(pos)), text.replace("e+", "e"), self.graphics)

    # -- export ---------------------------------------------------------------------------------------------
    def _ask_path(self, title: str, default: str, filters: str, save) -> None:
        save_with_dialog(self, title, default, filters, save, lambda message: self.readout.setText(html.escape(message)))

    def export_csv(self, path: str) -> None:
        """Every curve at the current slider values, as a long table."""
        from ..core.scaling import curves_frame

        write_csv(curves_frame(self.n, self.d, self.c), path, index=False)

    def export_image(self, path: str) -> None:
        """All four plots, PNG or SVG by extension."""
        export_plot(self.graphics.ci, path)
