"""Attention heatmap: one head's query x key map for the current text."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QVBoxLayout

from ..core.results import HeadMap, Trace
from ..core.specs import ModelInfo
from ..workers.model_host import JobOutcome
from .base import DockView
from .heatmap import HeatmapPlot


class AttentionView(DockView):
    NAME = "attention"
    TITLE = "Attention"
    AREA = Qt.DockWidgetArea.RightDockWidgetArea

    def __init__(self, host, parent=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(host, parent)
        self.layer = QSpinBox()
        self.layer.setPrefix("Layer ")
        self.head = QSpinBox()
        self.head.setPrefix("Head ")
        self.summary = QLabel()
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        controls = QHBoxLayout()
        controls.addWidget(self.layer)
        controls.addWidget(self.head)
        controls.addWidget(self.summary, 1)
        self.heatmap = HeatmapPlot(bar_label="attention weight")
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self.heatmap, 1)
        self.heatmap.item.setLabel("left", "query token")
        self.heatmap.item.setLabel("bottom", "key token")
        self.layer.valueChanged.connect(self._request)
        self.head.valueChanged.connect(self._request)
        self.shown: HeadMap | None = None

    def model_changed(self, info: ModelInfo) -> None:
        for box, count in ((self.layer, info.num_layers), (self.head, info.num_heads)):
            box.blockSignals(True)
            box.setRange(0, max(0, count - 1))  # keeps the current selection where it still exists
            box.setSuffix(f" / {max(0, count - 1)}")
            box.blockSignals(False)

    def trace_changed(self, trace: Trace) -> None:
        if trace.attention is None:
            self.show_message(trace.attention_note or "This model's attention could not be captured.")
            self.mark_ready()
            return
        self._request()

    def _request(self) -> None:
        trace = self.trace
        if trace is None or trace.attention is None or trace.is_empty:
            return
        self.mark_busy()
        self.host.call(f"{self.NAME}.head", "llmviz.core.jobs.head_map", "Computing the attention map",
                       trace_id=trace.id, layer=self.layer.value(), head=self.head.value())

    def job_finished(self, outcome: JobOutcome) -> None:
        if self.trace is None:
            return
        if not outcome.ok:
            if outcome.status == "failed" and outcome.kwargs.get("trace_id") == self.trace.id:
                self.show_message(outcome.message)
                self.mark_ready()
            return
        result: HeadMap = outcome.value
        if result.trace_id != self.trace.id:
            return
        self.draw(result, self.trace)

    def draw(self, result: HeadMap, trace: Trace) -> None:
        labels = trace.labels()
        rows = [labels[i] for i in result.row_index]
        cols = [labels[i] for i in result.col_index]
        self.heatmap.set_matrix(result.matrix, rows, cols, levels=(0.0, max(1e-6, float(result.matrix.max()))),
                                row_index=result.row_index, col_index=result.col_index)
        self.shown = result
        n = trace.num_tokens
        cap = trace.attention
        kv = f", KV head {cap.kv_head(result.head)} of {cap.num_kv_heads}" if cap and cap.num_kv_heads != cap.num_heads else ""
        self.summary.setText(f"{n} tokens · layer {result.layer}, head {result.head}{kv} · exact values")
        self.show_content()
        self.mark_ready()
