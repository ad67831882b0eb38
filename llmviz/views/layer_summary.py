"""Layer summary dock: every module's output shape, parameters and forward time, measured on the text.

What the notebook printed with torchinfo's `summary`, measured by forward hooks on the
worker for the current input.  A sortable table (pandas-backed) and a bar chart of wall
time per part of the forward (embeddings, each block, final norm, head).  The header says
how the unique parameter count relates to torchinfo's total when weights are tied.

The measurement is a second forward pass, so it runs only while the dock is visible.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..core import targets
from ..core.layer_summary_results import LayerSummary
from ..core.results import Trace
from ..widgets.plot_export import save_csv
from ..widgets.plot_style import style_plot
from ..workers.jobs import JobOutcome
from .base import DockView

if TYPE_CHECKING:
    import pandas as pd

    from ..widgets.frame_table import FrameTable

COLUMNS = ["order", "path", "class", "output_shape", "output_type", "calls", "time_ms", "self_ms", "time_pct", "parameters",
           "parameters_per_use", "tied"]
HEADERS = {"order": "#", "path": "Module", "class": "Class", "output_shape": "Output shape", "output_type": "Output type",
           "calls": "Calls",
           "time_ms": "Time (ms)", "self_ms": "Self (ms)", "time_pct": "% of forward", "parameters": "Parameters",
           "parameters_per_use": "Counted per use", "tied": "Shares weights"}
BLOCK_COLOR = "#0072B2"
OTHER_COLOR = "#E69F00"


def _count(value: object) -> str:
    return f"{int(value):,}"


def _ms(value: object) -> str:
    return f"{float(value):,.2f}"


def _pct(value: object) -> str:
    return f"{float(value):.1f} %"


FORMATTERS = {"parameters": _count, "parameters_per_use": _count, "time_ms": _ms, "self_ms": _ms, "time_pct": _pct}


SHORT_NAMES = {"embed_tokens": "emb", "word_embeddings": "emb", "wte": "emb", "embeddings": "emb",
               "rotary_emb": "rope", "norm": "norm", "ln_f": "norm", "final_layernorm": "norm", "lm_head": "head",
               "pooler": "pool"}


def bar_ticks(paths: list[str], is_block: np.ndarray, times: np.ndarray) -> list[tuple[float, str]]:
    """Axis labels that do not collide: every block when there are few bars; else every 5th block and the
    other parts by a short name, where of two neighbouring labels the one with the longer time wins."""
    stride = 1 if len(paths) <= 16 else 5
    ticks: list[tuple[float, str, float]] = []
    for x, (path, block, t) in enumerate(zip(paths, is_block, times)):
        last = path.rsplit(".", 1)[-1]
        if block and int(last) % stride:
            continue
        label = last if block else SHORT_NAMES.get(last, last[:5])
        if stride > 1 and ticks and x - ticks[-1][0] < 2:
            if ticks[-1][2] >= t:
                continue
            ticks.pop()
        ticks.append((float(x), label, float(t)))
    return [(x, label) for x, label, _ in ticks]


class LayerSummaryView(DockView):
    NAME = "layer-summary"
    TITLE = "Layer summary"
    AREA = Qt.DockWidgetArea.LeftDockWidgetArea
    STATE = ("depth", "filter")

    def __init__(self, host, parent=None) -> None:
        super().__init__(host, parent)
        self.result: LayerSummary | None = None
        self.table: FrameTable | None = None
        self.header = QLabel()
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.depth = QSpinBox()
        self.depth.setRange(0, 20)
        self.depth.setSpecialValueText("all depths")
        self.depth.setPrefix("Depth ≤ ")
        self.depth.setToolTip("Show modules down to this nesting depth (0: all)")
        self.depth.valueChanged.connect(self._refilter)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter by module or class (e.g. mlp, Linear)")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._refilter)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self._ask_export)
        self.status = QLabel()
        self.status.hide()
        controls = QHBoxLayout()
        controls.addWidget(self.filter, 1)
        controls.addWidget(self.depth)
        controls.addWidget(self.export_button)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(180)
        style_plot(self.plot.getPlotItem(), title="Wall time per part of the forward pass", left="time (ms)",
                   bottom="module, in forward order (blue: transformer blocks)")
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.scene().sigMouseClicked.connect(self._on_plot_click)
        self.table_holder = QVBoxLayout()
        self.table_holder.setContentsMargins(0, 0, 0, 0)
        table_box = QWidget()
        table_box.setLayout(self.table_holder)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(table_box)
        splitter.addWidget(self.plot)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addLayout(controls)
        layout.addWidget(self.status)
        layout.addWidget(splitter, 1)
        self.chart_rows: list[int] = []

    # ------------------------------------------------------------------ requests
    def trace_changed(self, trace: Trace) -> None:
        self.request()  # costs a forward pass: DockView.LAZY defers it while the dock is hidden

    def request(self) -> None:
        trace = self.trace
        if trace is None or trace.is_empty:
            return
        self.mark_busy()
        self.show_message(f"Measuring every module on {trace.num_tokens:,} tokens…")
        self.host.call(targets.LAYER_SUMMARY, label="Measuring every module", on_done=self._measured,
                       trace_id=trace.id)

    def _measured(self, outcome: JobOutcome) -> None:
        if self.trace is None or outcome.kwargs.get("trace_id") != self.trace.id:
            return
        if outcome.ok:
            self.set_summary(outcome.value)
        else:
            self.show_message(outcome.message if outcome.status == "failed" else "Measurement cancelled.")
            self.mark_ready()

    # ------------------------------------------------------------------ drawing
    def set_summary(self, result: LayerSummary) -> None:
        from ..widgets.frame_table import DataFrameModel, FrameTable

        self.result = result
        if self.table is None:
            self.table = FrameTable(DataFrameModel(COLUMNS, HEADERS, FORMATTERS))
            self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # forward order, as torchinfo lists them
            self.table_holder.addWidget(self.table)
        self._refilter()
        self.table.fit_columns(330)
        notes = "".join(f"<br>{html.escape(n)}" for n in result.notes)
        n = len(result.not_run)
        skipped = f" · {n} module{'s' if n != 1 else ''} did not run (hover for names)" if n else ""
        self.header.setToolTip("Modules the forward pass never called (containers such as a ModuleList, or "
                               "dropouts that the attention kernel replaces):\n" + "\n".join(result.not_run[:40])
                               if n else "")
        self.header.setText(
            f"<b>{html.escape(result.model_title)}</b> on {result.num_tokens:,} tokens · forward with a hook on every "
            f"module: {result.forward_s * 1000:,.1f} ms (wall time; other programs on this computer add noise)"
            f"{skipped}<br>{html.escape(result.explain_totals())}{notes}")
        self._draw_chart(result)
        self.show_content()
        self.mark_ready()

    def visible_frame(self) -> pd.DataFrame:
        """The rows the table shows: depth and text filters applied."""
        assert self.result is not None
        frame = self.result.frame
        if self.depth.value():
            frame = frame[frame["depth"] <= self.depth.value()]
        needle = self.filter.text().strip().lower()
        if needle:
            keep = frame["path"].str.lower().str.contains(needle, regex=False) | \
                frame["class"].str.lower().str.contains(needle, regex=False)
            frame = frame[keep]
        return frame

    def _refilter(self) -> None:
        if self.result is None or self.table is None:
            return
        self.table.frame_model.set_frame(self.visible_frame())

    def _draw_chart(self, result: LayerSummary) -> None:
        item = self.plot.getPlotItem()
        item.clear()
        rows = list(result.chart)
        self.chart_rows = rows
        if not rows:
            return
        frame = result.frame.iloc[rows]
        times = frame["time_ms"].to_numpy(dtype=np.float64)
        is_block = frame["path"].str.rsplit(".", n=1).str[-1].str.isdigit().to_numpy()
        xs = np.arange(len(rows), dtype=np.float64)
        brushes = [pg.mkBrush(BLOCK_COLOR if b else OTHER_COLOR) for b in is_block]
        item.addItem(pg.BarGraphItem(x=xs, height=times, width=0.8, brushes=brushes, pen=None))
        item.getAxis("bottom").setTicks([bar_ticks(frame["path"].tolist(), is_block, times), []])
        item.setXRange(-0.7, len(rows) - 0.3, padding=0)
        item.setYRange(0, max(float(times.max()), 1e-3) * 1.1, padding=0)

    def _on_plot_click(self, event) -> None:
        """Clicking a bar selects its module in the table."""
        if self.result is None or self.table is None or not self.chart_rows:
            return
        point = self.plot.getPlotItem().vb.mapSceneToView(event.scenePos())
        bar = int(round(point.x()))
        if 0 <= bar < len(self.chart_rows):
            self.select_module(str(self.result.frame.iloc[self.chart_rows[bar]]["path"]))

    def select_module(self, path: str) -> bool:
        """Select a module's row (clearing filters that hide it)."""
        if self.table is None:
            return False
        frame = self.table.frame_model.frame
        rows = np.nonzero(frame["path"].to_numpy() == path)[0]
        if not len(rows):
            self.filter.clear()
            self.depth.setValue(0)
            frame = self.table.frame_model.frame
            rows = np.nonzero(frame["path"].to_numpy() == path)[0]
        if not len(rows):
            return False
        self.table.select_source_row(int(rows[0]))
        return True

    # ------------------------------------------------------------------ export
    def _ask_export(self) -> None:
        if self.result is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export the layer summary", "layer_summary.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str) -> bool:
        """All rows (not only the filtered ones), raw numbers."""
        if self.result is None:
            return False
        return save_csv(self.result.frame, path, self.status, f"Saved {len(self.result.frame):,} rows to {path}")
