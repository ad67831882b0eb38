"""Similarity dock: cosine similarity of token vectors at any layer, and two texts compared.

The hidden states stay in the engine: each layer's map is a small job (about a millisecond
of numpy at T = 512, block means for long texts), and dragging the slider supersedes the
layers it passes, so the map follows the slider.
"""

from __future__ import annotations

import html
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
)

from ..core import targets
from ..core.embeddings_results import SimilarityMap, TextComparison, layer_name
from ..core.results import Trace
from ..core.specs import ModelInfo
from ..widgets.heatmap import HeatmapPlot
from ..widgets.layer_slider import layer_slider, layer_text, set_layers
from ..widgets.layouts import column, fill, row
from ..widgets.plot_export import ask_csv_path, ask_image_path, export_plot, write_csv
from ..widgets.why_button import ExplainRequest, WhyButton
from ..workers.jobs import JobOutcome
from .base import DockView

COLORMAP = "CET-D1"  # diverging blue-white-red, centred on 0 like the notebook's coolwarm
LEVELS = (-1.0, 1.0)
CENTER_NOTE = (
    "Raw hidden states are anisotropic: they share one large common direction, so nearly every pair of tokens "
    "looks similar. “Subtract the mean direction” removes this text's mean direction at the layer first and shows "
    "what is left."
)


class SimilarityView(DockView):
    NAME = "similarity"
    TITLE = "Similarity"
    AREA = Qt.DockWidgetArea.RightDockWidgetArea
    STATE = ("center", "other_text", "slider", "tabs")

    def __init__(self, host, parent=None) -> None:
        super().__init__(host, parent)
        self.slider, self.layer_label = layer_slider(label_width=170)
        self.center = QCheckBox("Subtract the mean direction")
        self.center.setToolTip(CENTER_NOTE)
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_image_button = QPushButton("Export image…")
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Layer:"))
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.layer_label)
        controls.addWidget(self.center)
        controls.addWidget(self.export_csv_button)
        controls.addWidget(self.export_image_button)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color:#444;")

        # tab 1: the text's tokens against each other
        self.heatmap = HeatmapPlot(colormap=COLORMAP, bar_label="cosine similarity")
        self.heatmap.item.setLabel("left", "token")
        self.heatmap.item.setLabel("bottom", "token")
        self.summary = QLabel()
        tokens_tab = column(self.summary, (self.heatmap, 1))

        # tab 2: two texts
        self.other_text = QLineEdit()
        self.other_text.setPlaceholderText("A second text to compare with the text above, e.g. “A kitten rested on the rug”")
        self.other_text.returnPressed.connect(self.request_comparison)
        compare = QPushButton("Compare")
        compare.clicked.connect(self.request_comparison)
        self.why_button = WhyButton(self.why_request, "Open the Explain dock on this similarity: which tokens of the "
                                    "text above make its sentence embedding close to (or far from) the second text's "
                                    "(encoders such as MiniLM)")
        second = row((self.other_text, 1), compare, self.why_button, margins=None)
        self.sentence_label = QLabel("Type a second text and press Compare.")
        self.sentence_label.setWordWrap(True)
        self.sentence_label.setTextFormat(Qt.TextFormat.RichText)
        self.sentence_plot = pg.PlotWidget()
        self.sentence_plot.setMenuEnabled(False)
        self.sentence_plot.setMaximumHeight(190)
        sp = self.sentence_plot.getPlotItem()
        sp.setLabel("left", "cosine (mean-pooled)")
        sp.setLabel("bottom", "layer (0 = embeddings)")
        sp.showGrid(x=True, y=True, alpha=0.3)
        sp.setYRange(-0.05, 1.0)
        self.sentence_curve = sp.plot([], [], pen=pg.mkPen("#1f5fa8", width=2), symbol="o", symbolSize=6,
                                      symbolBrush="#1f5fa8")
        self.sentence_marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#d0202a", width=1.5, style=Qt.PenStyle.DashLine))
        sp.addItem(self.sentence_marker)
        self.cross = HeatmapPlot(colormap=COLORMAP, bar_label="cosine similarity")
        self.cross.item.setLabel("left", "first text")
        self.cross.item.setLabel("bottom", "second text")
        compare_tab = column(second, self.sentence_label, self.sentence_plot, (self.cross, 1))

        self.tabs = QTabWidget()
        self.tabs.addTab(tokens_tab, "Tokens of this text")
        self.tabs.addTab(compare_tab, "Two texts")
        fill(QVBoxLayout(self.content), controls, self.note, (self.tabs, 1), margins=4)

        self.comparison: TextComparison | None = None
        self._comparing = False
        self.shown: SimilarityMap | None = None
        self.cross_shown: SimilarityMap | None = None
        self.last_redraw_ms = 0.0  # from asking for a layer's map to drawing it (the bench reads it)
        self._asked_at = 0.0
        self.slider.valueChanged.connect(self.redraw)
        self.center.toggled.connect(self.redraw)
        self.tabs.currentChanged.connect(lambda _i: self.redraw())
        self.export_csv_button.clicked.connect(self._export_csv_dialog)
        self.export_image_button.clicked.connect(self._export_image_dialog)

    # -- model and trace ---------------------------------------------------------------------
    def model_changed(self, info: ModelInfo) -> None:
        set_layers(self.slider, info.num_layers, info.num_layers)  # the last hidden state, as the notebook uses
        self.why_button.setEnabled(not info.is_decoder)  # a decoder's "why" is a next token (Prediction's button)
        self._forget_comparison()

    def why_request(self) -> ExplainRequest | None:
        """The similarity of the text's sentence embedding to the second text."""
        other = self.other_text.text().strip()
        return ExplainRequest(compare=other) if other else None

    def trace_changed(self, trace: Trace) -> None:
        set_layers(self.slider, trace.num_states - 1)
        if self.comparison is not None:
            self.request_comparison()  # the first text changed: compare the new one
        self.redraw()

    def _forget_comparison(self) -> None:
        self.comparison = None
        self._comparing = False
        self.cross_shown = None
        self.sentence_curve.setData([], [])
        self.sentence_label.setText("Type a second text and press Compare.")
        self.cross.clear()

    @property
    def layer(self) -> int:
        return self.slider.value()

    # -- drawing -------------------------------------------------------------------------------
    def redraw(self) -> None:
        """Ask the engine for the map(s) at the slider's layer; a newer request supersedes an older one,
        so dragging the slider only ever waits for the latest layer."""
        trace = self.trace
        if trace is None or trace.is_empty:
            return
        layer = min(self.layer, trace.num_states - 1)
        num_layers = trace.num_states - 1
        self.layer_label.setText(layer_text(layer, num_layers))
        centered = self.center.isChecked()
        self.note.setText(CENTER_NOTE if not centered else
                          "Centred: the mean of this text's unit-length vectors at this layer is subtracted before "
                          "the cosine (the common direction removed; 0 now means “no more alike than average”; "
                          "unit length first, so one very long vector cannot become the mean by itself).")
        self._asked_at = time.perf_counter()
        if self.tabs.currentIndex() == 0:
            self.host.call(targets.SIMILARITY_MAP, channel=self.channel("map"), label="Token similarity",
                           on_done=self.on_result(self._draw_tokens, self._map_failed), trace_id=trace.id,
                           layer=layer, centered=centered)
        elif self.comparison is not None and self.comparison.trace_id == trace.id:
            self.host.call(targets.SIMILARITY_CROSS, channel=self.channel("cross"), label="Similarity of the two texts",
                           on_done=self.on_result(self._draw_cross, self._map_failed), trace_id=trace.id,
                           layer=layer, centered=centered)
        elif not self._comparing:
            self.show_content()
            self.mark_ready()

    def _drawn(self) -> None:
        self.last_redraw_ms = (time.perf_counter() - self._asked_at) * 1000
        self.show_content()
        if not self._comparing:
            self.mark_ready()

    def _map_failed(self, outcome: JobOutcome) -> None:
        if outcome.status == "failed":
            self.summary.setText(f"⚠ {html.escape(outcome.message)}")
        self._drawn()

    def _dominance_warning(self, name: str, dominant: tuple[int, float] | None, labels: list[str]) -> str:
        if dominant is None:
            return ""
        position, ratio = dominant
        return (f"<br><span style='color:#8a5300'>In the {name} text, {html.escape(labels[position])} [{position}] has a "
                f"vector {ratio:.0f}× longer than the median token's, so it dominates the mean.</span>")

    def _draw_tokens(self, sim: SimilarityMap) -> None:
        trace = self.trace
        assert trace is not None
        labels = trace.labels()
        self.heatmap.set_matrix(sim.matrix, labels, labels, levels=LEVELS, block=sim.block, keep_view=True)
        self.shown = sim
        n = sim.matrix.shape[0]
        how = "exact values" if sim.block == 1 else f"each cell is the mean over {sim.block} x {sim.block} token pairs"
        if trace.num_tokens < 2:
            self.summary.setText("One token: it is only compared with itself.")
        else:
            off = sim.matrix[~np.eye(n, dtype=bool)].mean() if n > 1 else float(sim.matrix[0, 0])
            self.summary.setText(f"{trace.num_tokens:,} tokens · mean similarity between different tokens "
                                 f"{float(off):.3f} · {how}")
        self._drawn()

    def _draw_cross(self, sim: SimilarityMap) -> None:
        trace, comp = self.trace, self.comparison
        if trace is None or comp is None or comp.trace_id != trace.id:
            return
        a, b = trace.labels(), comp.other_tokens.labels(comp.other_text)
        self.cross.set_matrix(sim.matrix, a, b, levels=LEVELS, block=sim.block, keep_view=True)
        self.cross_shown = sim
        layer = min(sim.layer, len(comp.sentence) - 1)
        self.sentence_marker.setValue(layer)
        value = float(comp.sentence[layer])
        last = float(comp.sentence[-1])
        warn = self._dominance_warning("first", sim.dominant[0], a) + self._dominance_warning("second", sim.dominant[1], b)
        self.sentence_label.setText(
            f"Sentence similarity at {layer_name(layer, len(comp.sentence) - 1)}: <b style='font-size:15pt'>{value:.3f}</b> "
            f"· at the last layer: <b>{last:.3f}</b> (cosine of the mean-pooled token vectors, as all-MiniLM-L6-v2 "
            f"is meant to be used; not centred){' · second text truncated' if comp.truncated_from else ''}{warn}")
        self._drawn()

    # -- two texts -----------------------------------------------------------------------------
    def state(self) -> dict:
        return {**super().state(), "compared": self.comparison is not None}

    def restore_state(self, state: dict) -> list[str]:
        unused = super().restore_state({k: v for k, v in state.items() if k != "compared"})
        if state.get("compared") is True and self.other_text.text().strip():
            self.request_comparison()
        return unused

    def request_comparison(self) -> None:
        text = self.other_text.text()
        if self.trace is None or self.trace.is_empty:
            return
        if not text.strip():
            self.sentence_label.setText("<span style='color:#b00020'>Type a second text to compare with.</span>")
            return
        self._comparing = True
        self.mark_busy()
        self.tabs.setCurrentIndex(1)
        self.sentence_label.setText("Running the second text…")
        self.host.call(targets.SIMILARITY_COMPARE, label="Running the second text", on_done=self._compared,
                       trace_id=self.trace.id, other_text=text)

    def _compared(self, outcome: JobOutcome) -> None:
        if self.trace is None or outcome.kwargs.get("trace_id") != self.trace.id:
            return
        self._comparing = False
        if not outcome.ok:
            if outcome.status == "failed":
                self.sentence_label.setText(f"<span style='color:#b00020'>{outcome.message}</span>")
            self.mark_ready()
            return
        self.comparison = outcome.value
        self.sentence_curve.setData(np.arange(len(self.comparison.sentence)), self.comparison.sentence)
        self.redraw()

    # -- export ----------------------------------------------------------------------------------
    def current_plot(self) -> HeatmapPlot:
        return self.heatmap if self.tabs.currentIndex() == 0 else self.cross

    def export_csv(self, path: str) -> None:
        """The shown matrix with 'position:token' labels."""
        write_csv(self.current_plot().frame(), path)

    def export_image(self, path: str) -> None:
        export_plot(self.current_plot().item, path)

    def _export_csv_dialog(self) -> None:
        path = ask_csv_path(self, f"similarity-layer{self.layer}")
        if path:
            self.export_csv(path)

    def _export_image_dialog(self) -> None:
        path = ask_image_path(self, f"similarity-layer{self.layer}")
        if path:
            self.export_image(path)
