"""Quantization dial: the loaded model at other precisions, what each costs and what it changes.

Turning the dial loads that precision of the current model in the engine (or takes it from
the cache) and compares it with the loaded model on the current text.  The charts fill in
as positions are visited.  INT2/INT1 are simulated and say so wherever they appear.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..core import targets
from ..core.quantization_results import (
    PRECISIONS,
    DialState,
    HeadDiff,
    ModeReport,
    Precision,
    comparison_frame,
    precision,
    theoretical_frame,
)
from ..core.results import Trace
from ..core.specs import ModelInfo
from ..widgets.frame_table import DataFrameModel, FrameTable
from ..widgets.heatmap import HeatmapPlot
from ..widgets.layouts import column, fill, row, vertical_scroll
from ..widgets.message_bar import MessageBar
from ..widgets.plot_export import export_plot, write_csv
from ..widgets.plot_style import style_plot
from ..widgets.precision_charts import CostQualityCharts, DriftChart, render_svg
from ..widgets.precision_dial import PrecisionDial
from ..widgets.quantization_tables import (
    FORMATS,
    HEADERS,
    SIZE_COLUMNS,
    SIZE_FORMATS,
    SIZE_HEADERS,
    TOPK_COLUMNS,
    TopKModel,
    keep_source_order,
    topk_frame,
)
from ..widgets.wrapped_label import WrappedLabel
from ..workers.jobs import JobOutcome
from .base import DockView


def _plain_label(p: Precision) -> str:
    """The label without '(simulated)', for places that add their own SIMULATED tag."""
    return p.label.replace(" (simulated)", "")



def _number(x: float) -> str:
    return f"{x:,.2f}" if abs(x) < 1e5 else f"{x:.3g}"


def _mb(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"




class QuantizationView(DockView):
    NAME = "quantization"
    TITLE = "Quantization"
    AREA = Qt.DockWidgetArea.RightDockWidgetArea
    DEBOUNCE_MS = 250
    STATE = ("tabs", "layer", "head", "position", "dial")

    def __init__(self, host, parent=None) -> None:
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
        fill(QHBoxLayout(self.content), left, (right, 1), margins=4)

    # -- construction ---------------------------------------------------------------------
    def _build_left(self) -> QWidget:
        self.dial = PrecisionDial()
        self.dial.valueChanged.connect(self._on_dial)
        self.dial.sig_resized.connect(self._fit_left)
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
        self.size_model = DataFrameModel(SIZE_COLUMNS, headers=SIZE_HEADERS, formatters=SIZE_FORMATS)
        self.size_table = FrameTable(self.size_model)
        keep_source_order(self.size_table, sortable=False)
        self.size_table.verticalHeader().setDefaultSectionSize(22)
        self.size_table.horizontalHeader().setMinimumSectionSize(30)
        self.size_table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.size_table.setFixedHeight(6 * 22 + 32)  # until its rows are in: then fit_height()
        self.size_table.setToolTip("The notebook's table: parameters × bits ÷ 8, whatever the format really stores.")
        panel = column(self.dial, self.mode_title, self.mode_text, self.reference_text, self.device_text, None,
                       self.size_title, self.size_table)
        self.left_scroll = vertical_scroll(panel)  # short docks scroll instead of squeezing the dial into the text
        self._fit_left()
        return self.left_scroll

    def _fit_left(self) -> None:
        """The left column: 385 px on the desktop, as wide as the dial needs in larger fonts."""
        bar = self.left_scroll.verticalScrollBar().sizeHint().width()
        self.left_scroll.setFixedWidth(max(385, self.dial.minimumWidth() + bar + 8))

    def set_presentation(self, active: bool) -> None:
        """Presenting: the charts' short axis titles and hints, and the charts' room before the
        table's note (the lesson's text says where the figures come from)."""
        super().set_presentation(active)
        self.charts.set_presentation(active)
        self.table_note.setVisible(not active)

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            QTimer.singleShot(0, self, self._fit_left)  # once the dial has its new font and size

    def _build_right(self) -> QWidget:
        self.banner = MessageBar()
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_overview(), "Cost and quality")
        self.tabs.addTab(self._build_detail(), "Against the reference")
        return column(self.banner, (self.tabs, 1))

    def _build_overview(self) -> QWidget:
        self.charts = CostQualityCharts()
        self.memory_plot, self.kl_plot, self.top1_plot = self.charts.memory_plot, self.charts.kl_plot, self.charts.top1_plot
        self.table_model = DataFrameModel(list(HEADERS), headers=HEADERS, formatters=FORMATS,
                                          tooltip=self._row_tooltip)
        self.table = FrameTable(self.table_model)
        keep_source_order(self.table, sortable=True)
        self.export_table_button = QPushButton("Export table (CSV)…")
        self.export_table_button.clicked.connect(lambda: self._ask_export("table"))
        self.export_chart_button = QPushButton("Export charts (PNG/SVG)…")
        self.export_chart_button.clicked.connect(lambda: self._ask_export("charts"))
        self.table.keep_rows_visible(1)
        self.table_note = note = WrappedLabel("Measured here; quality columns are for the current text.")
        note.setStyleSheet("color: #555;")  # wraps, so the dock can be narrower than the sentence
        buttons = row((note, 1), self.export_table_button, self.export_chart_button, margins=None)
        table_panel = column((self.table, 1), buttons)
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
        self.drift = DriftChart()
        self.drift_legend = self.drift.legend
        self.position = QSpinBox()
        self.position.setPrefix("Position ")
        self.position.valueChanged.connect(lambda _v: self._draw_topk())
        self.position_text = QLabel()
        self.position_text.setWordWrap(True)
        self.topk_model = TopKModel()
        self.topk = FrameTable(self.topk_model)
        keep_source_order(self.topk, sortable=False)
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
        topk_box = fill(QVBoxLayout(), row(self.position, (self.position_text, 1), margins=None), (self.topk, 1),
                        margins=None)
        fill(QHBoxLayout(self.predictions), (self.kl_position, 1), (topk_box, 1))
        drift_box = fill(QVBoxLayout(), (self.drift, 1), self.drift_legend, margins=None)
        head_box = fill(QVBoxLayout(), row(self.layer, self.head, (self.head_text, 1), margins=None), (self.heatmap, 1),
                        margins=None)
        lower = QWidget()
        fill(QHBoxLayout(lower), (drift_box, 1), (head_box, 1))
        self.detail_splitter = QSplitter(Qt.Orientation.Vertical)  # equal halves whatever the table's size hint
        self.detail_splitter.addWidget(self.predictions)
        self.detail_splitter.addWidget(lower)
        self.detail_splitter.setSizes([1000, 1000])
        return column(self.detail_title, (self.detail_splitter, 1), margins=2)

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
        self.size_table.fit_columns(400)
        self.size_table.fit_height()  # every row shown, at any font
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
                       on_done=self._if_not_cancelled(self._on_variant), mode=key, trace_id=self.trace.id,
                       layer=self.layer.value(), head=self.head.value(), memory_limit_bytes=self.memory_limit_bytes)

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

    def frame(self):  # -> pd.DataFrame
        return comparison_frame(self.current_reports(), self.trace.id if self.trace else None)

    def _draw_overview(self) -> None:
        """Place the visited precisions' points in the charts, and fill the table."""
        self.charts.draw(self.reports, self.trace.id if self.trace else None,
                         self.dial_state.num_parameters if self.dial_state else None)
        frame = self.frame()
        self.table_model.set_frame(frame)
        self.table.fit_columns(160)
        no_cuda = bool(frame.empty or frame["cuda_change_MiB"].isna().all())
        self.table.setColumnHidden(list(HEADERS).index("cuda_change_MiB"), no_cuda)

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
        self.drift.draw(self.reports, self.trace.id if self.trace else None, self.shown.key if self.shown else None,
                        self.info.num_layers if self.info else None)

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
        self.topk_model.set_frame(topk_frame(q, i))
        self.topk.fit_columns(200)

    def _on_kl_click(self, event) -> None:
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
                       on_done=self.on_result(self._on_head), mode=self.shown.key, trace_id=self.trace.id,
                       layer=self.layer.value(), head=self.head.value())

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
            render_svg(self.charts, path)
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
