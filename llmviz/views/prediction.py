"""Prediction dock: next-token probabilities with sampling controls, and the logit lens.

The worker returns a position's full logits once; temperature, top-k and top-p are then
applied here with numpy (`core.sampling.sampling_distribution`), so the controls
update the bars live.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontMetrics, QTransform
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsItem,
    QGraphicsSimpleTextItem,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..core import targets
from ..core.prediction_results import LogitLens, PositionLogits
from ..core.results import Trace
from ..core.sampling import entropy_bits, is_greedy, sampling_distribution, softmax
from ..core.specs import ModelInfo
from ..widgets.flow_layout import flow_row
from ..widgets.heatmap import HeatmapPlot
from ..widgets.plot_export import ask_csv_path, ask_image_path, export_plot, write_csv
from ..widgets.sampling_boxes import sampling_boxes
from ..widgets.token_chips import TokenChips
from ..widgets.why_button import ExplainRequest, WhyButton
from ..workers.jobs import JobOutcome
from .base import DockView

if TYPE_CHECKING:  # pandas is imported when a table or CSV is made, not at start-up
    import pandas as pd

MODEL_BRUSH = pg.mkBrush(170, 170, 170, 200)
SAMPLE_BRUSH = pg.mkBrush(31, 95, 168, 230)
LENS_COUNT = 24
CELL_CHARS = 7


def short(label: str, n: int = CELL_CHARS) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


class CellTexts:
    """The word in each lens cell: a pool of plain Qt text items, reused between draws.

    QGraphicsSimpleTextItem with ItemIgnoresTransformations keeps its pixel size at any zoom
    and is painted by Qt itself; a redraw only touches items whose text, colour or place
    changed (pyqtgraph's TextItem costs dozens of Qt calls per item per draw).
    """

    def __init__(self, viewbox: pg.ViewBox) -> None:
        self.viewbox = viewbox
        self.font = QFont("DejaVu Sans", 8)
        self.metrics = QFontMetrics(self.font)
        self.items: list[QGraphicsSimpleTextItem] = []
        self.state: list[tuple] = []  # (text, dark, x, y, visible) last applied per item

    def _item(self, i: int) -> QGraphicsSimpleTextItem:
        while len(self.items) <= i:
            item = QGraphicsSimpleTextItem()
            item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            item.setFont(self.font)
            item.setZValue(20)
            self.viewbox.addItem(item, ignoreBounds=True)
            self.items.append(item)
            self.state.append(("", None, None, None, True))
        return self.items[i]

    def show(self, cells: list[tuple[str, bool, float, float]]) -> None:
        """cells: (text, on a dark background, x, y of the cell centre)."""
        for i, (text, dark, x, y) in enumerate(cells):
            item, (old_text, old_dark, ox, oy, shown) = self._item(i), self.state[i]
            if text != old_text:
                item.setText(text)
                width = self.metrics.horizontalAdvance(text)
                item.setTransform(QTransform.fromTranslate(-width / 2, -self.metrics.height() / 2))
            if dark != old_dark:
                item.setBrush(QColor("#ffffff" if dark else "#000000"))
            if (x, y) != (ox, oy):
                item.setPos(x, y)
            if not shown:
                item.setVisible(True)
            self.state[i] = (text, dark, x, y, True)
        for i in range(len(cells), len(self.items)):
            if self.state[i][4]:
                self.items[i].setVisible(False)
                self.state[i] = self.state[i][:4] + (False,)

    @property
    def shown(self) -> list[str]:
        return [s[0] for s in self.state if s[4]]


class LensPlot(HeatmapPlot):
    """The layers x positions grid with each cell's top guess written in it; hover shows the top 5."""

    def __init__(self) -> None:
        super().__init__(colormap="viridis", bar_label="probability")
        self.lens: LogitLens | None = None
        self.texts = CellTexts(self.item.getViewBox())
        self.row_layers: np.ndarray = np.zeros(0, int)
        self.value_name = "top-1 probability"

    def show_lens(self, lens: LogitLens, input_labels: list[str], by_actual: bool) -> None:
        self.lens = lens
        self.row_layers = lens.layers[::-1]  # last layer at the top, embeddings at the bottom
        last = int(lens.layers[-1])
        rows = [("last " if layer == last else "") + (f"{layer}" if layer else "0 embed") for layer in self.row_layers]
        cols = [input_labels[p] for p in lens.positions]
        values = lens.actual_prob if by_actual else lens.top_probs[..., 0]
        self.value_name = "probability of the actual next token" if by_actual else "top-1 probability"
        self.set_matrix(values[::-1], rows, cols, levels=(0.0, 1.0), col_index=lens.positions,
                        row_index=self.row_layers, bar_label=self.value_name)
        top = lens.top_probs[..., 0]
        self.texts.show([(short(lens.top_labels[layer][c][0]), float(top[layer, c]) <= 0.55, c + 0.5, r + 0.5)
                         for r, layer in enumerate(self.row_layers) for c in range(len(lens.positions))])

    def describe(self, r: int, c: int) -> str:
        lens = self.lens
        if lens is None:
            return super().describe(r, c)
        layer = int(self.row_layers[r])
        guesses = ", ".join(f"{lbl!s} {p:.3f}" for lbl, p in zip(lens.top_labels[layer][c], lens.top_probs[layer, c]))
        actual = ""
        if lens.actual_next[c] >= 0:
            actual = f" · actual next token p={float(lens.actual_prob[layer, c]):.3f}"
        where = "embeddings" if layer == 0 else f"layer {layer}"
        return f"{where}, after {self.col_labels[c]} [{int(lens.positions[c])}]: {guesses}{actual}"


class PredictionView(DockView):
    NAME = "prediction"
    TITLE = "Prediction"
    AREA = Qt.DockWidgetArea.RightDockWidgetArea
    STATE = ("tabs", "temperature", "top_k", "top_p", "bars", "lens_start", "lens_count", "lens_colour")

    def __init__(self, host, parent=None) -> None:
        super().__init__(host, parent)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_next_tab(), "Next token")
        self.tabs.addTab(self._build_lens_tab(), "Logit lens")
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tabs)
        self.logits: PositionLogits | None = None
        self.lens_result: LogitLens | None = None
        self.position = -1  # -1 = the last position
        self._restored_position: int | None = None  # a session's position, kept until a trace arrives
        self._pending: set[str] = set()

    # -- construction ------------------------------------------------------------------------------
    def _build_next_tab(self) -> QWidget:
        self.chips, self.chips_area = TokenChips.scrolling(point_size=11)
        chips_area = self.chips_area
        chips_area.setMaximumHeight(96)
        self.chips.sig_clicked.connect(self.select_position)
        self.temperature, self.top_k, self.top_p = sampling_boxes(temperature=1.0, top_k=0, top_p=1.0)
        self.temperature.setToolTip("Divides the logits before the softmax: < 1 sharpens, > 1 flattens; 0 = greedy.")
        self.top_k.setToolTip("Keep only the k most likely tokens (0 = no limit).")
        self.top_p.setToolTip("Keep the most likely tokens until their probability adds up to p (1 = no limit; 0 = greedy).")
        self.bars = QSpinBox()
        self.bars.setRange(3, 40)
        self.bars.setValue(15)
        self.bars.setPrefix("show ")
        self.bars.setSuffix(" tokens")
        export = QPushButton("Export image…")
        export.clicked.connect(lambda: self._export_image_dialog(self.bar_item, "next-token"))
        self.why_button = WhyButton(lambda: ExplainRequest(position=self.position),
                                    "Open the Explain dock on the top prediction at this position: which input "
                                    "tokens it rests on, by several methods, with their faithfulness")
        for box in (self.temperature, self.top_k, self.top_p, self.bars):
            box.valueChanged.connect(self.redraw_bars)
        controls = QHBoxLayout()  # each group wraps in presentation's large text (flow rows)
        controls.addWidget(flow_row(self.temperature, self.top_k, self.top_p, self.bars), 4)
        controls.addStretch(1)
        controls.addWidget(flow_row(self.why_button, export))
        self.bar_title = QLabel()
        self.bar_title.setTextFormat(Qt.TextFormat.RichText)
        self.bar_title.setWordWrap(True)
        self.bar_plot = pg.PlotWidget()
        self.bar_plot.setMenuEnabled(False)
        self.bar_item = self.bar_plot.getPlotItem()
        self.bar_item.invertY(True)
        self.bar_item.setLabel("bottom", "probability")
        self.bar_item.getAxis("bottom").enableAutoSIPrefix(False)
        self.bar_item.showGrid(x=True, alpha=0.3)
        self.bar_item.getAxis("left").setStyle(tickFont=QFont("DejaVu Sans", 10))
        self.model_bars = pg.BarGraphItem(x0=[], y=[], height=0.8, width=[], brush=MODEL_BRUSH, pen=None)
        self.sample_bars = pg.BarGraphItem(x0=[], y=[], height=0.42, width=[], brush=SAMPLE_BRUSH, pen=None)
        self.bar_item.addItem(self.model_bars)
        self.bar_item.addItem(self.sample_bars)
        legend = self.bar_item.addLegend(offset=(-10, -10))  # bottom right, clear of the longest bars
        legend.addItem(self.model_bars, "model (temperature 1, no filter)")
        legend.addItem(self.sample_bars, "sampling distribution (these settings)")
        self.bar_summary = QLabel()
        self.bar_summary.setWordWrap(True)
        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Click a token to predict what follows it (default: the last one):"))
        layout.addWidget(chips_area)
        layout.addLayout(controls)
        layout.addWidget(self.bar_title)
        layout.addWidget(self.bar_plot, 1)
        layout.addWidget(self.bar_summary)
        return tab

    def _build_lens_tab(self) -> QWidget:
        self.lens_start = QSpinBox()
        self.lens_start.setPrefix("from position ")
        self.lens_count = QSpinBox()
        self.lens_count.setRange(1, 64)
        self.lens_count.setValue(LENS_COUNT)
        self.lens_count.setPrefix("show ")
        self.lens_count.setSuffix(" positions")
        self.lens_colour = QComboBox()
        self.lens_colour.addItem("colour: top-1 probability", False)
        self.lens_colour.addItem("colour: probability of the actual next token", True)
        self.lens_start.editingFinished.connect(self.request_lens)
        self.lens_count.editingFinished.connect(self.request_lens)
        self.lens_colour.currentIndexChanged.connect(lambda _i: self.draw_lens())
        export_png = QPushButton("Export image…")
        export_png.clicked.connect(lambda: self._export_image_dialog(self.lens_plot.item, "logit-lens"))
        export_csv = QPushButton("Export CSV…")
        export_csv.clicked.connect(self._export_lens_dialog)
        controls = QHBoxLayout()
        controls.addWidget(flow_row(self.lens_start, self.lens_count, self.lens_colour), 4)
        controls.addStretch(1)
        controls.addWidget(flow_row(export_png, export_csv))
        self.lens_note = QLabel()
        self.lens_note.setWordWrap(True)
        self.lens_plot = LensPlot()
        self.lens_plot.item.setLabel("left", "layer")
        self.lens_plot.item.setLabel("bottom", "input token (each cell guesses the token after it)")
        self.lens_plot.sig_clicked.connect(self._lens_clicked)
        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.lens_note)
        layout.addWidget(self.lens_plot, 1)
        return tab

    # -- model and trace ---------------------------------------------------------------------------
    def model_changed(self, info: ModelInfo) -> None:
        self.logits = self.lens_result = None
        self.position = -1

    def trace_changed(self, trace: Trace) -> None:
        if self.info is not None and not self.info.is_decoder:
            self.show_message(
                f"{self.info.title} is an {self.info.family} model. It reads the whole text at once and has no head "
                "that predicts a next token, so next-token prediction and the logit lens do not apply. "
                "Load a decoder such as bundled:smollm2.")
            self.mark_ready()
            return
        restored, self._restored_position = self._restored_position, None
        self.position = restored if restored is not None and restored < trace.num_tokens else -1
        labels = trace.labels()
        self.chips.set_tokens(labels, lambda i: f"position {i}: {labels[i]} (id {int(trace.tokens.ids[i])})",
                              special=trace.tokens.special)
        self.chips.set_selected(self.position if self.position >= 0 else trace.num_tokens - 1)
        QTimer.singleShot(0, self._show_selected_chip)  # after the chips are laid out at their width
        self.lens_start.blockSignals(True)
        self.lens_start.setRange(0, max(0, trace.num_tokens - 1))
        self.lens_start.setValue(max(0, trace.num_tokens - self.lens_count.value()))
        self.lens_start.blockSignals(False)
        self.request_next()
        self.request_lens()

    def _show_selected_chip(self) -> None:
        i = self.chips.selected
        if 0 <= i < len(self.chips.labels):
            centre = self.chips.chip_rect(i).center()
            self.chips_area.ensureVisible(int(centre.x()), int(centre.y()))

    def state(self) -> dict:
        return {**super().state(), "position": self.position}

    def restore_state(self, state: dict) -> list[str]:
        unused = super().restore_state({k: v for k, v in state.items() if k != "position"})
        position = state.get("position")
        if isinstance(position, int) and self.trace is None and position >= -1:
            self._restored_position = position  # applied when the trace arrives
        elif isinstance(position, int) and self.trace is not None and -1 <= position < self.trace.num_tokens:
            self.select_position(position)
        elif "position" in state:
            unused.append("position")
        return unused

    def select_position(self, position: int) -> None:
        """Show the predictions at `position` (-1: the last)."""
        self.position = position
        self.chips.set_selected(position)
        self.request_next()

    def _lens_clicked(self, _row: int, col: int) -> None:
        if self.lens_result is not None and col < len(self.lens_result.positions):
            self.select_position(int(self.lens_result.positions[col]))
            self.tabs.setCurrentIndex(0)

    # -- jobs -----------------------------------------------------------------------------------------
    def request_next(self) -> None:
        if self.trace is None or self.trace.is_empty:
            return
        self._pending.add("next")
        self.mark_busy()
        self.host.call(targets.PREDICTION_NEXT, label="Computing next-token probabilities",
                       on_done=lambda o: self._part_done("next", o), trace_id=self.trace.id, position=self.position)

    def request_lens(self) -> None:
        if self.trace is None or self.trace.is_empty or (self.info is not None and not self.info.is_decoder):
            return
        self._pending.add("lens")
        self.mark_busy()
        self.host.call(targets.PREDICTION_LENS, label="Logit lens", on_done=lambda o: self._part_done("lens", o),
                       trace_id=self.trace.id, start=self.lens_start.value(), count=self.lens_count.value())

    def _part_done(self, kind: str, outcome: JobOutcome) -> None:
        if self.trace is None or outcome.kwargs.get("trace_id") != self.trace.id:
            return
        self._pending.discard(kind)
        if outcome.ok:
            if kind == "next":
                self.logits = outcome.value
                self.redraw_bars()
            else:
                self.lens_result = outcome.value
                self.draw_lens()
        elif outcome.status == "failed":
            self.show_message(outcome.message)
        if not self._pending:
            self.mark_ready()

    # -- drawing -----------------------------------------------------------------------------------------
    def redraw_bars(self) -> None:
        result, trace = self.logits, self.trace
        if result is None or trace is None or result.trace_id != trace.id:
            return
        temperature, top_k, top_p = self.temperature.value(), self.top_k.value(), self.top_p.value()
        model_p = softmax(result.logits)
        sample_p = sampling_distribution(result.logits, temperature, top_k, top_p)
        n = min(self.bars.value(), len(result.top_ids))
        ids = result.top_ids[:n]
        ranks = np.arange(n)
        self.model_bars.setOpts(x0=np.zeros(n), y=ranks, width=model_p[ids], height=0.8)
        self.sample_bars.setOpts(x0=np.zeros(n), y=ranks, width=sample_p[ids], height=0.42)
        labels = [f"{result.top_labels[i]}" for i in range(n)]
        self.bar_item.getAxis("left").setTicks([[(float(r), labels[r]) for r in ranks]])
        top = float(max(model_p[ids].max(), sample_p[ids].max()))
        self.bar_item.setXRange(0, min(1.05, top * 1.08 + 1e-3), padding=0)
        self.bar_item.setYRange(-0.6, n - 0.4, padding=0)
        label = trace.labels()[result.position]
        self.bar_title.setText(f"Next token after <b>{label}</b> (position {result.position} of {trace.num_tokens - 1})")
        kept = int((sample_p > 0).sum())
        parts = [f"model entropy {entropy_bits(model_p):.2f} bits",
                 f"sampling keeps {kept:,} token{'s' if kept != 1 else ''} (entropy {entropy_bits(sample_p):.2f} bits)"]
        if is_greedy(temperature, top_k, top_p):
            parts.append("greedy: " + ("temperature 0" if temperature <= 0 else "top-p 0" if top_p <= 0 else "top-k 1")
                         + " always picks the most likely token")
        if result.actual_next >= 0:
            rank = int((result.logits > result.logits[result.actual_next]).sum()) + 1
            p_actual = model_p[result.actual_next]
            parts.append(f"actually follows in the text: {result.actual_label} (p = {p_actual:.3f}, rank {rank:,})")
        if result.note:
            parts.append(result.note)
        self.bar_summary.setText(" · ".join(parts))
        self.show_content()

    def draw_lens(self) -> None:
        lens, trace = self.lens_result, self.trace
        if lens is None or trace is None or lens.trace_id != trace.id:
            return
        self.lens_plot.show_lens(lens, trace.labels(), bool(self.lens_colour.currentData()))
        self.lens_note.setText(
            "Logit lens: each layer's hidden state sent through the model's final norm and output head, as if the "
            "model stopped there. Each cell shows that layer's most likely next token; hover for the top 5, click "
            "to see the full distribution." + (f" {lens.note}" if lens.note else ""))
        self.show_content()

    # -- export ---------------------------------------------------------------------------------------------
    def lens_frame(self) -> pd.DataFrame:
        """Every cell's top-k guesses in long form: layer, position, input token, rank, candidate, probability."""
        import pandas as pd
        lens, trace = self.lens_result, self.trace
        if lens is None or trace is None:
            return pd.DataFrame()
        labels = trace.labels()
        rows = []
        for layer in lens.layers:
            for c, position in enumerate(lens.positions):
                candidates = zip(lens.top_labels[layer][c], lens.top_ids[layer, c], lens.top_probs[layer, c])
                for rank, (cand, tid, p) in enumerate(candidates):
                    rows.append({"layer": int(layer), "position": int(position), "input_token": labels[position],
                                 "rank": rank + 1, "candidate": cand, "candidate_id": int(tid), "probability": float(p),
                                 "actual_next_probability": float(lens.actual_prob[layer, c])})
        return pd.DataFrame(rows)

    def _export_image_dialog(self, item, name: str) -> None:
        path = ask_image_path(self, name)
        if path:
            export_plot(item, path)

    def _export_lens_dialog(self) -> None:
        path = ask_csv_path(self, "logit-lens")
        if path:
            write_csv(self.lens_frame(), path)
