"""Quantization dial: the loaded model at other precisions, what each costs and what it changes.

Turning the dial loads that precision of the current model on the worker (or takes it from
the cache) and compares it with the loaded model on the current text.  The charts fill in
as positions are visited.  INT2/INT1 are simulated and say so wherever they appear.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRect, QRectF, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import (
    QDial,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QStyle,
    QStyleOptionSlider,
    QTabWidget,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from ..core import targets
from ..core.quantization import (
    PRECISIONS,
    DialState,
    HeadDiff,
    ModeReport,
    Precision,
    comparison_frame,
    precision,
    theoretical_frame,
)
from ..core.results import Trace, visible
from ..core.specs import ModelInfo
from ..widgets.frame_table import DataFrameModel, FrameTable
from ..widgets.message_bar import MessageBar
from ..widgets.plot_export import export_plot, write_csv
from ..widgets.plot_style import style_plot
from ..workers.jobs import JobOutcome
from .base import DockView
from ..widgets.heatmap import HeatmapPlot

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
HEADERS = {
    "precision": "Precision", "bits": "Bits", "kind": "Kind", "memory_MB": "Memory MB",
    "footprint_MB": "get_memory_footprint MB", "scales_MB": "Scales MB", "linear_layers_MB":
    "Linear layers MB", "rss_change_MB": "RSS Δ MB", "cuda_change_MB": "CUDA Δ MB", "load_s": "Load s",
    "forward_s": "Forward s", "tokens": "Tokens", "mean_kl": "Mean KL", "top1_agreement": "Top-1 agree",
    "top5_overlap": "Top-5 overlap", "perplexity": "Perplexity", "reference_perplexity": "Ref. perplexity",
    "attention_max_abs_diff": "Max |Δ attn|", "last_layer_rel_error": "Last-layer drift", "device": "Device",
}
TOPK_COLUMNS = ["rank", "reference", "p_reference", "variant", "p_variant", "change"]


def _fmt(spec: str):  # type: ignore[no-untyped-def]
    """A cell formatter that shows missing values as a dash."""
    def fmt(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "—"
        return format(value, spec)
    return fmt


FORMATS = {
    "memory_MB": _fmt(",.1f"), "footprint_MB": _fmt(",.1f"), "scales_MB": _fmt(",.2f"), "linear_layers_MB": _fmt(",.1f"), "rss_change_MB": _fmt(",.0f"),
    "cuda_change_MB": _fmt(",.0f"), "load_s": _fmt(".2f"), "forward_s": _fmt(".3f"), "tokens": _fmt(".0f"),
    "mean_kl": _fmt(".4g"), "top1_agreement": _fmt(".1%"), "top5_overlap": _fmt(".1%"), "perplexity": _fmt(".2f"),
    "reference_perplexity": _fmt(".2f"), "attention_max_abs_diff": _fmt(".3g"), "last_layer_rel_error": _fmt(".3g"),
}
SIZE_FORMATS = {"reduction": _fmt(".0f"), "savings_pct": _fmt(".1f"), "size_MB": _fmt(",.1f")}


class _ReflowingCharts(pg.GraphicsLayoutWidget):
    """The three cost/quality charts in one row when there is room, else in a 2 x 2 grid.

    In a dock of ~600 px the row of three squeezed the memory chart to a sliver and cut the
    third chart off at the dock's edge.
    """

    ROW_MIN_WIDTH = 780

    def __init__(self) -> None:
        self._plots: list[pg.PlotItem] = []  # set_items() fills them; pyqtgraph resizes before that
        self._legend: pg.LabelItem | None = None
        self._wide = True  # addPlot() lays them out in one row
        super().__init__()

    def set_items(self, plots: list[pg.PlotItem], legend: pg.LabelItem) -> None:
        self._plots, self._legend = plots, legend

    def resizeEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802 - Qt naming
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


def _keep_source_order(table: FrameTable, sortable: bool) -> None:
    """Rows in the order given (dial order, rank); clicking a header still sorts where `sortable`."""
    table.setSortingEnabled(sortable)
    table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
    table.proxy.sort(-1)


def _render_svg(widget: pg.GraphicsLayoutWidget, path: str) -> None:
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


def _plain_label(p: Precision) -> str:
    """The label without '(simulated)', for places that add their own SIMULATED tag."""
    return p.label.replace(" (simulated)", "")


def _probability(value: Any) -> str:
    return "—" if value is None or math.isnan(value) else (f"{value:.3f}" if value >= 0.001 else f"{value:.1e}")


def _decades(plot: pg.PlotItem, values: list[float]) -> None:
    """A log-scale y range from a whole decade to a whole decade, labelled at the decades only.

    pyqtgraph 0.14 labels every minor log tick (0.2, 0.3, ... overprint); explicit ticks avoid that.
    """
    lo = math.floor(math.log10(min(values)))
    hi = max(math.ceil(math.log10(max(values)) + 0.05), lo + 1)
    plot.setYRange(lo, hi, padding=0.04)
    majors = [(float(d), f"{10.0 ** d:g}" if -4 <= d <= 4 else f"1e{d}") for d in range(lo, hi + 1)]
    minors = [(d + math.log10(k), "") for d in range(lo, hi) for k in range(2, 10)]
    plot.getAxis("left").setTicks([majors, minors])


def _number(x: float) -> str:
    return f"{x:,.2f}" if abs(x) < 1e5 else f"{x:.3g}"


def _mb(n: float) -> str:
    return f"{n / 2**20:,.1f} MB"


# ---------------------------------------------------------------- the dial


class PrecisionDial(QDial):
    """A QDial with its positions labelled around it; unavailable positions are grey and say why on hover."""

    LABEL_MARGIN = 74  # room around the knob for the labels

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWrapping(False)
        self.setNotchesVisible(True)
        self.setSingleStep(1)
        self.setPageStep(1)
        self.setMinimumWidth(320)
        self.setFixedHeight(280)
        self.labels: list[str] = []
        self.enabled: list[bool] = []
        self.tips: list[str] = []
        self.setAccessibleName("Precision dial")

    def set_positions(self, labels: list[str], enabled: list[bool], tips: list[str]) -> None:
        self.labels, self.enabled, self.tips = labels, enabled, tips
        self.blockSignals(True)
        self.setRange(0, max(0, len(labels) - 1))
        self.blockSignals(False)
        self.update()

    def position_enabled(self, i: int) -> bool:
        return 0 <= i < len(self.enabled) and self.enabled[i]

    # -- geometry: QDial maps value v to the angle 4π/3 - (v - min) / (max - min) * 5π/3 ----------
    def _radius(self) -> float:
        return max(30.0, min(self.width() / 2 - self.LABEL_MARGIN, self.height() / 2 - 26))

    def _angle(self, value: int) -> float:
        span = max(1, self.maximum() - self.minimum())
        return 4 * math.pi / 3 - (value - self.minimum()) / span * (5 * math.pi / 3)

    def label_rect(self, i: int) -> QRectF:
        c = QPointF(self.width() / 2, self.height() / 2)
        a = self._angle(i)
        r = self._radius() + 10
        metrics = self.fontMetrics()
        w, h = metrics.horizontalAdvance(self.labels[i]) + 6, metrics.height() + 2
        x = c.x() + r * math.cos(a) + (math.cos(a) - 1) * w / 2
        y = c.y() - r * math.sin(a) - (math.sin(a) + 1) * h / 2
        return QRectF(x, y, w, h)

    def position_at(self, pos: QPointF) -> int | None:
        for i in range(len(self.labels)):
            if self.label_rect(i).adjusted(-4, -4, 4, 4).contains(pos):
                return i
        return None

    def paintEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802 - Qt naming
        option = QStyleOptionSlider()
        self.initStyleOption(option)
        r = int(self._radius())
        center = self.rect().center()
        option.rect = QRect(center.x() - r, center.y() - r, 2 * r, 2 * r)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.style().drawComplexControl(QStyle.ComplexControl.CC_Dial, option, painter, self)
        base = QFont(self.font())
        for i, text in enumerate(self.labels):
            font = QFont(base)
            current = i == self.value()
            font.setBold(current)
            font.setItalic(not self.position_enabled(i))
            painter.setFont(font)
            color = QColor("#0b5cad") if current else QColor("#222222")
            if not self.position_enabled(i):
                color = QColor("#9a9a9a")
            painter.setPen(QPen(color))
            painter.drawText(self.label_rect(i), Qt.AlignmentFlag.AlignCenter, text)
        painter.end()

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and self.tips:
            i = self.position_at(QPointF(event.pos()))
            QToolTip.showText(event.globalPos(), self.tips[self.value() if i is None else i], self)
            return True
        return super().event(event)


class _Mark:
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


class _TopKModel(DataFrameModel):
    """The top-k lists side by side; flipped tokens are tinted."""

    def __init__(self) -> None:
        super().__init__(TOPK_COLUMNS, headers={"rank": "#", "reference": "Reference", "p_reference": "p",
                                                "variant": "Variant", "p_variant": "p", "change": "Change"},
                         formatters={"p_reference": _probability, "p_variant": _probability})

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):  # type: ignore[no-untyped-def]
        if index.isValid() and role == Qt.ItemDataRole.BackgroundRole:
            row = self.frame.iloc[index.row()]
            column = self.columns[index.column()]
            if column in ("reference", "p_reference") and row["ref_missing"]:
                return QBrush(QColor("#fde2c4"))
            if column in ("variant", "p_variant", "change") and row["change"] not in ("", "="):
                return QBrush(QColor("#fde7e9") if row["rank"] == 1 else QColor("#fff2cc"))
        return super().data(index, role)


# ---------------------------------------------------------------- the view


class QuantizationView(DockView):
    NAME = "quantization"
    TITLE = "Quantization"
    AREA = Qt.DockWidgetArea.RightDockWidgetArea
    DEBOUNCE_MS = 250
    STATE = ("tabs", "layer", "head", "position", "dial")

    def __init__(self, host, parent=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(host, parent)
        self.dial_state: DialState | None = None
        self.reports: dict[str, ModeReport] = {}  # the latest report per precision
        self.shown: ModeReport | None = None
        self.head_shown: HeadDiff | None = None
        self.memory_limit_bytes: int | None = None  # None: the worker measures free memory
        self._visiting: str | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(self.DEBOUNCE_MS)
        self._timer.timeout.connect(self._submit_visit)
        left = self._build_left()
        right = self._build_right()
        layout = QHBoxLayout(self.content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(left)
        layout.addWidget(right, 1)

    # -- construction ---------------------------------------------------------------------
    def _build_left(self) -> QWidget:
        panel = QWidget()
        self.dial = PrecisionDial()
        self.dial.valueChanged.connect(self._on_dial)
        self.mode_title = QLabel()
        self.mode_title.setStyleSheet("font-size: 15pt; font-weight: bold;")
        self.mode_text = QLabel()
        self.reference_text = QLabel()
        self.device_text = QLabel()
        for label in (self.mode_text, self.reference_text, self.device_text):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.device_text.setStyleSheet("color: #555;")
        self.size_title = QLabel()
        self.size_title.setWordWrap(True)
        self.size_model = DataFrameModel(["level", "bits", "reduction", "savings_pct", "size_MB"],
                                         headers={"level": "Level", "bits": "Bits", "reduction": "× smaller",
                                                  "savings_pct": "Saved %", "size_MB": "Size MB"},
                                         formatters=SIZE_FORMATS)
        self.size_table = FrameTable(self.size_model)
        _keep_source_order(self.size_table, sortable=False)
        self.size_table.verticalHeader().setDefaultSectionSize(22)
        self.size_table.horizontalHeader().setMinimumSectionSize(30)
        self.size_table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.size_table.setFixedHeight(6 * 22 + 32)
        self.size_table.setToolTip("The notebook's table: parameters × bits ÷ 8, whatever the format really stores.")
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.dial)
        layout.addWidget(self.mode_title)
        layout.addWidget(self.mode_text)
        layout.addWidget(self.reference_text)
        layout.addWidget(self.device_text)
        layout.addStretch(1)
        layout.addWidget(self.size_title)
        layout.addWidget(self.size_table)
        scroll = QScrollArea()  # short docks scroll instead of squeezing the dial into the text
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setFixedWidth(385)
        return scroll

    def _build_right(self) -> QWidget:
        self.banner = MessageBar()
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_overview(), "Cost and quality")
        self.tabs.addTab(self._build_detail(), "Against the reference")
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.tabs, 1)
        return panel

    def _build_overview(self) -> QWidget:
        self.charts = _ReflowingCharts()
        self.memory_plot = self.charts.addPlot(row=0, col=0)
        self.kl_plot = self.charts.addPlot(row=0, col=1)
        self.top1_plot = self.charts.addPlot(row=0, col=2)
        style_plot(self.memory_plot, "Memory", "MB (weights + scales)", "bits per weight")
        style_plot(self.kl_plot, "Mean KL vs reference", "nats (log scale)", "bits per weight")
        style_plot(self.top1_plot, "Top-1 agreement", "% of positions", "bits per weight")
        self.kl_plot.setLogMode(y=True)
        for column, stretch in enumerate((13, 10, 10)):  # the memory plot's wider axis gets its room back
            self.charts.ci.layout.setColumnStretchFactor(column, stretch)
        self.top1_plot.setYRange(-8, 108, padding=0)
        for plot in (self.memory_plot, self.kl_plot, self.top1_plot):
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.getAxis("bottom").setTicks([[(math.log2(b), str(b)) for b in (1, 2, 4, 8, 16, 32)]])
            plot.setXRange(-1.0, 6.0, padding=0)  # room for the point labels at both ends
            plot.setMenuEnabled(False)
        self.theory = self.memory_plot.plot([], [], pen=pg.mkPen("#888", width=2, style=Qt.PenStyle.DashLine))
        plots = {"memory": (self.memory_plot, False), "kl": (self.kl_plot, True), "top1": (self.top1_plot, False)}
        self.marks = {(name, p.key): _Mark(plot, p, log) for name, (plot, log) in plots.items() for p in PRECISIONS}
        self.hints = []
        for plot, y in ((self.kl_plot, 0.0), (self.top1_plot, 50.0)):
            hint = pg.TextItem("", color="#666", anchor=(0.5, 0.5))
            hint.setFont(QFont("DejaVu Sans", 10))
            hint.setPos(2.5, y)
            plot.addItem(hint)
            self.hints.append(hint)
        legend = self.charts.addLabel(
            "<span style='color:#888'>- - -</span> notebook: parameters × bits ÷ 8 &nbsp; ● measured &nbsp; "
            "○ simulated (stored in fp32)", row=1, col=0, colspan=3, size="10pt")
        self.charts.set_items([self.memory_plot, self.kl_plot, self.top1_plot], legend)
        self.table_model = DataFrameModel(list(HEADERS), headers=HEADERS, formatters=FORMATS,
                                          tooltip=self._row_tooltip)
        self.table = FrameTable(self.table_model)
        _keep_source_order(self.table, sortable=True)
        self.export_table_button = QPushButton("Export table (CSV)…")
        self.export_table_button.clicked.connect(lambda: self._ask_export("table"))
        self.export_chart_button = QPushButton("Export charts (PNG/SVG)…")
        self.export_chart_button.clicked.connect(lambda: self._ask_export("charts"))
        table_panel = QWidget()
        table_layout = QVBoxLayout(table_panel)
        table_layout.setContentsMargins(0, 0, 0, 0)
        table_layout.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        note = QLabel("Measured here; quality columns are for the current text.")
        note.setStyleSheet("color: #555;")
        note.setWordWrap(True)  # lets the dock be narrower than the sentence
        buttons.addWidget(note, 1)
        buttons.addWidget(self.export_table_button)
        buttons.addWidget(self.export_chart_button)
        table_layout.addLayout(buttons)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.charts)
        splitter.addWidget(table_panel)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        return splitter

    def _build_detail(self) -> QWidget:
        self.detail_title = QLabel()
        self.detail_title.setWordWrap(True)
        self.detail_title.setStyleSheet("font-size: 12pt;")
        self.kl_position = pg.PlotWidget()
        style_plot(self.kl_position.getPlotItem(), "KL per position (red: top-1 flipped)", "nats", "token position")
        self.kl_position.setMenuEnabled(False)
        self.kl_position.getPlotItem().getAxis("left").enableAutoSIPrefix(False)
        self.kl_position.scene().sigMouseClicked.connect(self._on_kl_click)
        self.position_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#0b5cad", width=2))
        self.kl_bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=pg.mkBrush("#7aa6d6"), pen=None)
        self.flip_marks = pg.ScatterPlotItem(symbol="x", size=11, pen=pg.mkPen("#c0142a", width=2), brush=None)
        for item in (self.kl_bars, self.flip_marks, self.position_line):
            self.kl_position.addItem(item)
        self.drift = pg.PlotWidget()
        style_plot(self.drift.getPlotItem(), "Hidden-state drift per layer", "‖h − h_ref‖ / ‖h_ref‖ (log)",
                   "layer (0 = embeddings)")
        self.drift.setLogMode(y=True)
        self.drift.setMenuEnabled(False)
        self.drift_curves = {p.key: self.drift.plot([], []) for p in PRECISIONS}
        self.drift_legend = QLabel()
        self.drift_legend.setWordWrap(True)
        self.position = QSpinBox()
        self.position.setPrefix("Position ")
        self.position.valueChanged.connect(lambda _v: self._draw_topk())
        self.position_text = QLabel()
        self.position_text.setWordWrap(True)
        self.topk_model = _TopKModel()
        self.topk = FrameTable(self.topk_model)
        _keep_source_order(self.topk, sortable=False)
        self.layer = QSpinBox()
        self.layer.setPrefix("Layer ")
        self.head = QSpinBox()
        self.head.setPrefix("Head ")
        self.layer.valueChanged.connect(self._request_head)
        self.head.valueChanged.connect(self._request_head)
        self.head_text = QLabel()
        self.heatmap = HeatmapPlot(colormap="CET-D1", bar_label="reference − variant")
        self.heatmap.bar.axis.enableAutoSIPrefix(False)
        self.heatmap.item.setLabel("left", "query token")
        self.heatmap.item.setLabel("bottom", "key token")
        self.predictions = QWidget()  # KL per position and the top-k lists: hidden for models without an LM head
        predictions = QHBoxLayout(self.predictions)
        predictions.setContentsMargins(0, 0, 0, 0)
        predictions.addWidget(self.kl_position, 1)
        topk_box = QVBoxLayout()
        row = QHBoxLayout()
        row.addWidget(self.position)
        row.addWidget(self.position_text, 1)
        topk_box.addLayout(row)
        topk_box.addWidget(self.topk, 1)
        predictions.addLayout(topk_box, 1)
        lower = QWidget()
        lower_layout = QHBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        drift_box = QVBoxLayout()
        drift_box.addWidget(self.drift, 1)
        drift_box.addWidget(self.drift_legend)
        lower_layout.addLayout(drift_box, 1)
        head_box = QVBoxLayout()
        row = QHBoxLayout()
        row.addWidget(self.layer)
        row.addWidget(self.head)
        row.addWidget(self.head_text, 1)
        head_box.addLayout(row)
        head_box.addWidget(self.heatmap, 1)
        lower_layout.addLayout(head_box, 1)
        self.detail_splitter = QSplitter(Qt.Orientation.Vertical)  # equal halves whatever the table's size hint
        self.detail_splitter.addWidget(self.predictions)
        self.detail_splitter.addWidget(lower)
        self.detail_splitter.setSizes([1000, 1000])
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.detail_title)
        layout.addWidget(self.detail_splitter, 1)
        return panel

    # -- window hooks -----------------------------------------------------------------------
    def model_changed(self, info: ModelInfo) -> None:
        self._timer.stop()
        self.dial_state, self.shown, self.head_shown, self._visiting = None, None, None, None
        self.reports.clear()
        self.banner.dismiss()
        self.kl_bars.setOpts(x=[], height=[])
        self.flip_marks.setData([], [])
        self._draw_drift()
        self.dial.set_positions([], [], [])
        for box, count in ((self.layer, info.num_layers), (self.head, info.num_heads)):
            box.blockSignals(True)
            box.setRange(0, max(0, count - 1))
            box.setValue(min(box.value(), max(0, count - 1)) if box is self.head else max(0, count // 2))
            box.blockSignals(False)
        self.mode_title.setText("Checking precisions…")
        self.host.call(targets.QUANTIZATION_STATE, label="Checking which precisions can run here",
                       on_done=self._if_not_cancelled(self._on_state))

    def trace_changed(self, trace: Trace) -> None:
        if self.dial_state is None:
            return  # the dial state arrives first; it starts the visit
        self._start_visit(self.current_key(), immediately=True)

    @staticmethod
    def _if_not_cancelled(callback: Callable[[JobOutcome], None]) -> Callable[[JobOutcome], None]:
        return lambda outcome: None if outcome.status == "cancelled" else callback(outcome)

    # -- the dial ---------------------------------------------------------------------------
    def current_key(self) -> str:
        return PRECISIONS[self.dial.value()].key

    def _on_state(self, outcome: JobOutcome) -> None:
        if not outcome.ok:
            self.show_message(outcome.message)
            self.mark_ready()
            return
        state: DialState = outcome.value
        self.dial_state = state
        labels = [p.short for p in PRECISIONS]
        enabled = [state.status(p.key).available for p in PRECISIONS]
        self.dial.set_positions(labels, enabled, [self._tooltip(p) for p in PRECISIONS])
        start = state.reference_key or next((p.key for p in PRECISIONS if state.status(p.key).available), "fp32")
        self.dial.blockSignals(True)
        self.dial.setValue([p.key for p in PRECISIONS].index(start))
        self.dial.blockSignals(False)
        self._describe_mode()
        self._describe_reference()
        self.device_text.setText(state.device_note)
        self.size_title.setText(f"<b>The notebook's size table</b> for {state.num_parameters:,} parameters "
                                "(parameters × bits ÷ 8)")
        self.size_model.set_frame(theoretical_frame(state.num_parameters))
        self.size_table.resizeColumnsToContents()
        self._draw_overview()
        if self.trace is not None and not self.trace.is_empty:
            self._start_visit(self.current_key(), immediately=True)

    def _tooltip(self, p: Precision) -> str:
        assert self.dial_state is not None
        status = self.dial_state.status(p.key)
        head = f"{p.label} · {p.bits} bit" + (" · SIMULATED" if p.simulated else "")
        if not status.available:
            return f"{head}\nNot available here: {status.reason}"
        size = f"\nAbout {_mb(status.estimated_bytes)} of weights." if status.estimated_bytes else ""
        return f"{head}\n{p.summary}{size}" + (f"\n{status.note}" if status.note else "")

    def _describe_mode(self) -> None:
        if self.dial_state is None:
            return
        p = precision(self.current_key())
        status = self.dial_state.status(p.key)
        sim = " · <span style='color:#a15c00'>SIMULATED</span>" if p.simulated else ""
        self.mode_title.setText(f"{_plain_label(p)} · {p.bits} bit{sim}")
        if status.available:
            note = status.note if not p.simulated else ""  # the summary already says what simulated means
            self.mode_text.setText(p.summary + (f"<br><i>{note}</i>" if note else ""))
        else:
            self.mode_text.setText(f"<span style='color:#8a1020'><b>Not available here.</b> {status.reason}</span>")

    def _describe_reference(self) -> None:
        assert self.dial_state is not None and self.info is not None
        info, state = self.info, self.dial_state
        text = (f"<b>Reference</b> (the loaded model): {state.reference_label} · {_mb(state.reference_bytes)} · "
                f"loaded in {info.load_s:.1f} s")
        if state.reference_note:
            text += f"<br><span style='color:#8a5a00'>⚠ {state.reference_note}</span>"
        self.reference_text.setText(text)

    def _on_dial(self, _value: int) -> None:
        if self.dial_state is None:
            return
        self._describe_mode()
        key = self.current_key()
        status = self.dial_state.status(key)
        if not status.available:
            self._timer.stop()
            self._visiting = None
            self.banner.show_message(f"{precision(key).label} cannot run here: {status.reason}", "warning")
            self.mark_ready()
            return
        self._start_visit(key, immediately=False)

    def _start_visit(self, key: str, immediately: bool) -> None:
        """Debounced: while the dial turns only the position it stops at is loaded."""
        if self.trace is None or self.trace.is_empty or self.dial_state is None:
            return
        if not self.dial_state.status(key).available:
            self.mark_ready()
            return
        self.mark_busy()
        self._visiting = key
        self.banner.show_message(f"{precision(key).label}: loading and comparing with the reference…", "info")
        if immediately:
            self._timer.stop()
            self._submit_visit()
        else:
            self._timer.start()

    def _submit_visit(self) -> None:
        key = self._visiting
        if key is None or self.trace is None:
            return
        label = precision(key).label
        self.host.call(targets.QUANTIZATION_VISIT, channel=self.channel("variant"), label=f"Quantization: {label}",
                       on_done=self._if_not_cancelled(self._on_variant), mode=key, trace_id=self.trace.id, layer=self.layer.value(), head=self.head.value(),
                       memory_limit_bytes=self.memory_limit_bytes)

    def _on_variant(self, outcome: JobOutcome) -> None:
        if self.trace is None or outcome.kwargs.get("trace_id") != self.trace.id:
            return
        if not outcome.ok:
            self.banner.show_message(outcome.message, "error")
            self._visiting = None
            self.mark_ready()
            return
        found = outcome.value if isinstance(outcome.value, tuple) else (outcome.value,)
        for report in found:
            self.reports[report.key] = report
        if "mode" in outcome.kwargs:  # a visit (not a refresh of the others)
            self.shown = found[0]
            self.head_shown = found[0].head
            self._visiting = None
            self.banner.dismiss()
            self._draw_detail()
            self._refresh_others()
        self._draw_overview()
        self.show_content()
        self.mark_ready()

    def _refresh_others(self) -> None:
        """Measure the other visited precisions on this text too, so the charts compare like with like."""
        assert self.trace is not None
        stale = [k for k, r in self.reports.items() if r.comparison.trace_id != self.trace.id]
        cached = set(self.shown.cached) if self.shown else set()
        keys = [k for k in stale if k in cached or (self.dial_state and k == self.dial_state.reference_key)]
        if keys:
            self.host.call(targets.QUANTIZATION_REFRESH, channel=self.channel("variant"),
                           label="Quantization: measuring the other precisions on this text",
                           on_done=self._if_not_cancelled(self._on_variant), modes=keys,
                           trace_id=self.trace.id, layer=self.layer.value(), head=self.head.value())

    # -- drawing: overview ------------------------------------------------------------------
    def current_reports(self) -> list[ModeReport]:
        return list(self.reports.values())

    def frame(self):  # type: ignore[no-untyped-def]  # -> pd.DataFrame
        return comparison_frame(self.current_reports(), self.trace.id if self.trace else None)

    def _draw_overview(self) -> None:
        """Update the persistent chart items (never clear and re-add: discarded Qt items left to Python's
        cyclic GC may be collected on the worker thread, which crashes Qt)."""
        if self.dial_state is not None:
            bits = np.array([1, 2, 4, 8, 16, 32], float)
            self.theory.setData(np.log2(bits), self.dial_state.num_parameters * bits / 8 / 2**20)
        trace_id = self.trace.id if self.trace else None
        top = self.dial_state.num_parameters * 4 / 2**20 if self.dial_state else 1.0
        kl_values = []
        for p in PRECISIONS:
            report = self.reports.get(p.key)
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
        _decades(self.kl_plot, kl_values or [1e-3, 10.0])  # an empty log axis is labelled at whole decades
        encoder = bool(self.reports) and not any(r.comparison.has_distributions for r in self.reports.values())
        for hint in self.hints:
            hint.setText("No next-token predictions:\nthis model has no\nlanguage-model head." if encoder
                         else "Turn the dial:\nevery precision you visit\nadds its point here.")
            hint.setVisible(not kl_values)
        frame = self.frame()
        self.table_model.set_frame(frame)
        self.table.fit_columns(160)
        no_cuda = bool(frame.empty or frame["cuda_change_MB"].isna().all())
        self.table.setColumnHidden(list(HEADERS).index("cuda_change_MB"), no_cuda)

    def _row_tooltip(self, row: Any) -> str:
        return {
            "simulated": "SIMULATED: rounded weights stored in fp32; memory is the fp32 memory.",
            "bitsandbytes": "Real bitsandbytes layers (memory measured with get_memory_footprint).",
        }.get(row["kind"], "A torch dtype variant of the reference.")

    # -- drawing: against the reference -------------------------------------------------------
    def _draw_detail(self) -> None:
        report = self.shown
        if report is None or self.dial_state is None:
            return
        p, q = precision(report.key), report.comparison
        ref = self.dial_state.reference_label
        prefix = f" (first {q.num_tokens:,} of {q.full_tokens:,} tokens)" if q.num_tokens < q.full_tokens else ""
        if q.has_distributions:
            ppl = (f" · perplexity {_number(q.perplexity_variant)} vs {_number(q.perplexity_reference)}"
                   if q.nll_reference.size else "")
            summary = (f"mean KL {q.mean_kl:.4g} nats · top-1 agreement {q.top1_rate:.1%} · "
                       f"top-5 overlap {q.top5_rate:.1%}{ppl} · {len(q.flips)} flipped")
        else:
            summary = "this model has no language-model head, so only hidden states and attention are compared"
        sim = " <b style='color:#a15c00'>(SIMULATED)</b>" if p.simulated else ""
        self.detail_title.setText(f"<b>{_plain_label(p)}</b>{sim} against the reference {ref}{prefix}: {summary}")
        self.predictions.setVisible(q.has_distributions)
        self._draw_kl_positions()
        self._draw_drift()
        self.position.blockSignals(True)
        self.position.setRange(0, max(0, q.num_tokens - 1))
        if self.position.value() >= q.num_tokens or not self.position.property("chosen"):
            self.position.setValue(max(0, q.num_tokens - 1))
        self.position.blockSignals(False)
        self._draw_topk()
        self._draw_head()

    def _draw_kl_positions(self) -> None:
        q = self.shown.comparison if self.shown else None
        if q is None or not q.has_distributions:
            return
        self.kl_bars.setOpts(x=np.arange(q.num_tokens), height=q.kl, width=0.8)
        flips = q.flips
        self.flip_marks.setData(flips, q.kl[flips])
        self.position_line.setValue(self.position.value())

    def _draw_drift(self) -> None:
        trace_id = self.trace.id if self.trace else None
        drawn: list[float] = []
        legend = []
        for p in PRECISIONS:
            curve = self.drift_curves[p.key]
            report = self.reports.get(p.key)
            err = report.comparison.hidden_relative_error if report else np.zeros(0)
            layers = np.flatnonzero(err > 0)  # the reference (all 0) and unquantized embeddings are off a log scale
            if report is None or report.comparison.trace_id != trace_id or not layers.size:
                curve.setVisible(False)
                continue
            shown = self.shown is not None and p.key == self.shown.key
            curve.setPen(pg.mkPen(COLORS[p.key], width=3.5 if shown else 1.5,
                                  style=Qt.PenStyle.DashLine if p.simulated else Qt.PenStyle.SolidLine))
            curve.setData(layers, err[layers])
            curve.setVisible(True)
            drawn += err[layers].tolist()
            weight = "bold" if shown else "normal"
            legend.append(f"<span style='color:{COLORS[p.key]}; font-weight:{weight}'>"
                          f"{'- -' if p.simulated else '—'} {p.short}</span>")
        self.drift_legend.setText(" &nbsp; ".join(legend))
        plot = self.drift.getPlotItem()
        if drawn:
            _decades(plot, drawn)
        step = max(1, math.ceil((self.info.num_layers + 1) / 10)) if self.info else 1
        plot.getAxis("bottom").setTickSpacing(step, step)

    def _draw_topk(self) -> None:
        import pandas as pd

        q = self.shown.comparison if self.shown else None
        if q is None or self.trace is None:
            return
        self.position_line.setValue(self.position.value())
        if not q.has_distributions:
            self.position_text.setText("No token distributions: this model has no language-model head.")
            self.topk_model.set_frame(pd.DataFrame(columns=TOPK_COLUMNS + ["ref_missing"]))
            return
        i = min(self.position.value(), q.num_tokens - 1)
        labels = self.trace.labels()
        nxt = f" · actual next: <b>{labels[i + 1]}</b>" if q.distribution == "next-token" and i + 1 < len(labels) else ""
        flipped = " · <span style='color:#c0142a'><b>top-1 flipped</b></span>" if not q.top1_agree[i] else ""
        self.position_text.setText(f"after <b>{labels[i]}</b>{nxt} · KL {q.kl[i]:.4g}{flipped}")
        ref_ids, var_ids = q.topk_reference_ids[i], q.topk_variant_ids[i]
        ref_rank = {int(t): r for r, t in enumerate(ref_ids)}
        var_set = {int(t) for t in var_ids}
        rows = []
        for r in range(len(ref_ids)):
            v = int(var_ids[r])
            before = ref_rank.get(v)
            change = "new" if before is None else ("=" if before == r else (f"↑{before - r}" if before > r else f"↓{r - before}"))
            rows.append({"rank": r + 1, "reference": visible(q.pieces.get(int(ref_ids[r]), "?")),
                         "p_reference": float(q.topk_reference_probs[i, r]),
                         "variant": visible(q.pieces.get(v, "?")), "p_variant": float(q.topk_variant_probs[i, r]),
                         "change": change, "ref_missing": int(ref_ids[r]) not in var_set})
        self.topk_model.set_frame(pd.DataFrame(rows))
        self.topk.fit_columns(200)

    def _on_kl_click(self, event) -> None:  # type: ignore[no-untyped-def]
        plot = self.kl_position.getPlotItem()
        if not plot.sceneBoundingRect().contains(event.scenePos()):
            return
        x = plot.getViewBox().mapSceneToView(event.scenePos()).x()
        self.position.setProperty("chosen", True)
        self.position.setValue(int(round(x)))

    def _request_head(self) -> None:
        if self.shown is None or self.trace is None or self.shown.head is None:
            return
        self.host.call(targets.QUANTIZATION_HEAD, label="Comparing the attention head",
                       on_done=self.on_result(self._on_head), mode=self.shown.key, trace_id=self.trace.id, layer=self.layer.value(), head=self.head.value())

    def _on_head(self, result: HeadDiff) -> None:
        if self.trace is None or self.shown is None or result.trace_id != self.trace.id or result.key != self.shown.key:
            return
        self.head_shown = result
        self._draw_head()

    def _draw_head(self) -> None:
        result = self.head_shown
        if result is None or self.trace is None:
            self.head_text.setText("No attention to compare for this model.")
            self.heatmap.clear()
            return
        labels = self.trace.labels()[: result.reference.shape[0]]
        m = max(result.max_abs, 1e-6)
        self.heatmap.set_matrix(result.diff, labels, labels, levels=(-m, m))
        self.heatmap.value_format = lambda v: f"{v:+.4f}"
        self.head_text.setText(f"layer {result.layer}, head {result.head}: max |Δ| = {result.max_abs:.4g}")

    # -- export ---------------------------------------------------------------------------------
    def export_table(self, path: str) -> None:
        """The comparison table as CSV (raw numbers; quality columns empty for other texts)."""
        write_csv(self.frame(), path, index=False)

    def export_charts(self, path: str) -> None:
        """The three cost/quality charts as one PNG or SVG (by extension)."""
        if path.lower().endswith(".svg"):
            _render_svg(self.charts, path)
        else:
            export_plot(self.charts.ci, path)

    def _ask_export(self, what: str) -> None:
        if what == "table":
            path, _ = QFileDialog.getSaveFileName(self, "Export the comparison table", "quantization.csv", "CSV (*.csv)")
            if path:
                self.export_table(path)
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Export the charts", "quantization.png",
                                                  "PNG image (*.png);;SVG drawing (*.svg)")
            if path:
                self.export_charts(path)
