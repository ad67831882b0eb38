"""Attention explorer: one head, every head, per-head statistics and rollout, at any length.

Four tabs share one set of display options (hide the first/special tokens, renormalise,
block reduction, colour map, log scale, export):
- Head: one head's query x key map, or the mean/max over a layer's heads.  Maps are
  computed on the worker at screen resolution (block max or mean, said in the summary);
  zooming in fetches the exact values of the visible region.  Click a query to see its
  row as bars over the text.  Keys: Left/Right head, Up/Down layer, Home/End first/last
  head, Ctrl+Home/Ctrl+End first/last layer.
- All heads: layers x heads thumbnails (grouped by key/value head), click to open one.
- Head statistics: entropy, mean attention distance, share on the first token.
- Rollout: Abnar & Zuidema's rollout map and one query's rollout as bars.
Grid and statistics are computed layer by layer only while their tab is shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QLabel,
    QMenu,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core import targets
from ..core.attention_results import ROLLOUT_MAP_MAX_TOKENS, AttentionMap, AttentionRow, LayerOverview
from ..core.formatting import bytes_text
from ..core.results import Trace
from ..core.specs import ModelInfo
from ..widgets.attention_map_panel import AttentionMapPanel
from ..widgets.head_grid import HeadGrid
from ..widgets.heatmap import HeatmapPlot
from ..widgets.layouts import column, row
from ..widgets.plot_export import write_csv
from ..workers.jobs import JobOutcome
from .base import DockView

if TYPE_CHECKING:  # pandas is imported when a table or CSV is made, not at start-up
    import pandas as pd

GRID_CELLS = 48  # thumbnail resolution (cells a side)
COLORMAPS = ("viridis", "cividis")
METRICS = {
    "entropy": ("Entropy of each head's attention (bits, mean over queries): low = focused", "entropy (bits)"),
    "distance": ("Mean attention distance (tokens between query and key): ~1 = previous-token head", "distance (tokens)"),
    "first": ("Share of attention on the first token: near 1 = attention-sink head", "share on first token"),
}
TAB_HEAD, TAB_GRID, TAB_STATS, TAB_ROLLOUT = range(4)


def _combo(items: dict[str, str], tip: str) -> QComboBox:
    box = QComboBox()
    for key, text in items.items():
        box.addItem(text, key)
    box.setToolTip(tip)
    return box



class AttentionView(DockView):
    NAME = "attention"
    TITLE = "Attention"
    AREA = Qt.DockWidgetArea.RightDockWidgetArea
    STATE = ("source", "reduce", "colormap", "log_scale", "hide_first", "hide_special", "renormalise", "layer", "head",
             "query", "grid_normalise", "stat_metric", "tabs")
    PRESENTATION_STATE = {"colormap": "cividis"}  # the combo shows the map in use; the user's comes back

    def __init__(self, host, parent=None) -> None:
        super().__init__(host, parent)
        self._labels: tuple[int, list[str]] = (-1, [])
        self.overviews: dict[int, LayerOverview] = {}
        self._build_options()
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_head_tab(), "Head")
        self.tabs.addTab(self._build_grid_tab(), "All heads")
        self.tabs.addTab(self._build_stats_tab(), "Head statistics")
        self.tabs.addTab(self._build_rollout_tab(), "Rollout")
        self.tabs.currentChanged.connect(self._tab_changed)
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addLayout(self.options_row)
        layout.addWidget(self.tabs, 1)
        for w in (self, self.head_panel.heatmap.plot, self.head_panel.bars, self.tabs.tabBar()):
            w.installEventFilter(self)

    # -- construction ----------------------------------------------------------------------
    def _build_options(self) -> None:
        self.hide_first = QCheckBox("Hide first token")
        self.hide_first.setToolTip("Many heads park attention on the first token (an attention sink); hide it")
        self.hide_special = QCheckBox("Hide special tokens")
        self.renormalise = QCheckBox("Renormalise")
        self.renormalise.setToolTip("Rescale each query's row to sum to 1 over the tokens still shown")
        self.reduce = _combo({"max": "Blocks: max", "mean": "Blocks: mean"},
                             "Long texts are drawn at screen resolution: each cell shows the max or mean of a block of tokens")
        self.colormap = _combo({c: c for c in COLORMAPS}, "Perceptually uniform, colour-blind-safe colour maps")
        self.log_scale = QCheckBox("Log colour")
        self.log_scale.setToolTip("Colour by log10 of the weight, so small weights become visible")
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        for text, ext, detail in (("Image (PNG)…", "png", False), ("Vector image (SVG)…", "svg", False),
                                  ("Matrix as shown (CSV)…", "csv", False), ("Zoomed region (CSV)…", "csv", True)):
            action = QAction(text, menu)
            action.triggered.connect(lambda _=False, e=ext, d=detail: self._export_dialog(e, d))
            menu.addAction(action)
        self.export_button.setMenu(menu)
        self.options_row = row(self.hide_first, self.hide_special, self.renormalise, self.reduce, self.colormap,
                               self.log_scale, None, self.export_button)
        for box in (self.hide_first, self.hide_special, self.renormalise):
            box.toggled.connect(self._options_changed)
        self.reduce.currentIndexChanged.connect(self._reduce_changed)
        self.colormap.currentIndexChanged.connect(self._look_changed)
        self.log_scale.toggled.connect(self._look_changed)

    def _build_head_tab(self) -> QWidget:
        self.layer = QSpinBox()
        self.layer.setPrefix("Layer ")
        self.head = QSpinBox()
        self.head.setPrefix("Head ")
        for box in (self.layer, self.head):
            box.setKeyboardTracking(False)
            box.valueChanged.connect(self._selection_changed)
        self.source = _combo({"head": "One head", "mean": "Mean over heads", "max": "Max over heads"},
                             "One head, or the mean / max over all heads of the layer")
        self.source.currentIndexChanged.connect(self._selection_changed)
        self.kv_label = QLabel()
        reset = QPushButton("Reset zoom")
        self.head_panel = AttentionMapPanel("attention weight", "attention weight")
        reset.clicked.connect(self.head_panel.heatmap.reset_view)
        self.head_panel.sig_region.connect(self._request_head_detail)
        self.head_panel.heatmap.sig_clicked.connect(self._query_clicked)
        return column(row(self.layer, self.head, self.source, self.kv_label, None, reset), self.head_panel.summary,
                      (self.head_panel.splitter, 1), margins=2)

    def _build_grid_tab(self) -> QWidget:
        self.grid = HeadGrid()
        self.grid.sig_head_clicked.connect(self.open_head)
        self.grid_normalise = QCheckBox("Scale each thumbnail to its own maximum")
        self.grid_normalise.setChecked(True)
        self.grid_normalise.toggled.connect(self._look_changed)
        self.grid_status = QLabel(" ")
        return column(row(self.grid_normalise, None, self.grid_status), (self.grid, 1), margins=2)

    def _build_stats_tab(self) -> QWidget:
        self.stat_metric = _combo({k: v[1].capitalize() for k, v in METRICS.items()}, "Per-head summary statistic")
        self.stat_metric.currentIndexChanged.connect(self._draw_stats)
        self.stats_map = HeatmapPlot(bar_label="entropy (bits)")
        self.stats_map.item.setLabel("left", "layer")
        self.stats_map.item.setLabel("bottom", "head")
        self.stats_map.sig_clicked.connect(self.open_head)
        self.stats_note = QLabel(" ")
        self.stats_note.setWordWrap(True)
        self.stats_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return column(row(self.stat_metric, None), self.stats_note, (self.stats_map, 1), margins=2)

    def _build_rollout_tab(self) -> QWidget:
        self.query = QSpinBox()
        self.query.setPrefix("Query token ")
        self.query.setKeyboardTracking(False)
        self.query.valueChanged.connect(self._request_rollout_row)
        self.rollout_panel = AttentionMapPanel("rollout weight", "rollout weight")
        self.rollout_panel.sig_region.connect(self._request_rollout_detail)
        self.rollout_panel.heatmap.sig_clicked.connect(self._rollout_clicked)
        self.rollout_note = QLabel("Attention rollout (Abnar & Zuidema 2020): per layer, average the heads, add the "
                                   "identity for the residual stream, renormalise rows, multiply through the layers. "
                                   "It usually piles onto the first token (an attention sink): tick <i>Hide first "
                                   "token</i> and <i>Renormalise</i> to compare the others.")
        self.rollout_note.setWordWrap(True)
        return column(row(self.query, None), self.rollout_note, self.rollout_panel.summary,
                      (self.rollout_panel.splitter, 1), margins=2)

    # -- state helpers ---------------------------------------------------------------------
    def labels(self) -> list[str]:
        """Token labels of the current trace (made once per trace: 8192 of them take a moment)."""
        trace = self.trace
        if trace is None:
            return []
        if self._labels[0] != trace.id:
            self._labels = (trace.id, trace.labels())
        return self._labels[1]

    def _has_maps(self) -> bool:
        trace = self.trace
        return trace is not None and trace.attention is not None and not trace.is_empty

    def _options(self) -> dict:
        return dict(hide_first=self.hide_first.isChecked(), hide_special=self.hide_special.isChecked(),
                    renormalise=self.renormalise.isChecked())

    def selection(self) -> tuple[str, int, int]:
        return self.source.currentData(), self.layer.value(), self.head.value()

    def set_selection(self, layer: int, head: int) -> None:
        """Select (layer, head), clamped to the model; one request, however many boxes change."""
        for box, value in ((self.layer, layer), (self.head, head)):
            box.blockSignals(True)
            box.setValue(min(max(box.minimum(), value), box.maximum()))
            box.blockSignals(False)
        self._selection_changed()

    def open_head(self, layer: int, head: int) -> None:
        """Show one head in the Head tab (from the grid or the statistics)."""
        if self.source.currentData() != "head":
            self.source.blockSignals(True)
            self.source.setCurrentIndex(0)
            self.source.blockSignals(False)
        self.tabs.setCurrentIndex(TAB_HEAD)
        self.set_selection(layer, head)

    # -- hooks -----------------------------------------------------------------------------
    def model_changed(self, info: ModelInfo) -> None:
        for box, count in ((self.layer, info.num_layers), (self.head, info.num_heads)):
            box.blockSignals(True)
            box.setRange(0, max(0, count - 1))  # keeps the current selection where it still exists
            box.setSuffix(f" / {max(0, count - 1)}")
            box.blockSignals(False)
        self.head_panel.shown = self.rollout_panel.shown = None
        self.overviews = {}

    def trace_changed(self, trace: Trace) -> None:
        self.overviews = {}
        self.head_panel.shown = self.rollout_panel.shown = None
        self.head_panel.bars.setVisible(False)
        self.rollout_panel.bars.setVisible(False)
        if trace.attention is None:
            self.show_message(trace.attention_note or "This model's attention could not be captured.")
            self.mark_ready()
            return
        cap = trace.attention
        self.show_content()
        self._kv_text()
        self.query.blockSignals(True)
        self.query.setRange(0, trace.num_tokens - 1)
        self.query.setValue(trace.num_tokens - 1)
        self.query.blockSignals(False)
        self.grid.reset(cap.num_layers, cap.num_heads, cap.num_kv_heads, trace.num_tokens, GRID_CELLS)
        self.grid.select(self.layer.value(), self.head.value())
        self._request_head()
        self._tab_changed(self.tabs.currentIndex())

    # -- head tab --------------------------------------------------------------------------
    def _kv_text(self) -> None:
        cap = self.trace.attention if self.trace else None
        if cap is None or cap.num_kv_heads == cap.num_heads or self.source.currentData() != "head":
            self.kv_label.setText("")
            return
        g = cap.num_heads // max(1, cap.num_kv_heads)
        kv = cap.kv_head(self.head.value())
        self.kv_label.setText(f"KV head {kv} of {cap.num_kv_heads} (shared by heads {kv * g}–{kv * g + g - 1})")

    def _selection_changed(self, *_: object) -> None:
        self.head.setEnabled(self.source.currentData() == "head")
        self._kv_text()
        self.grid.select(self.layer.value(), self.head.value())
        self._request_head()

    def _options_changed(self, *_: object) -> None:
        self.head_panel.shown = self.rollout_panel.shown = None
        self._request_head()
        if self.tabs.currentIndex() == TAB_ROLLOUT:
            self._request_rollout()

    def _reduce_changed(self, *_: object) -> None:
        """Block max/mean also shapes the thumbnails: start the grid again."""
        self._options_changed()
        if self._has_maps():
            cap = self.trace.attention
            self.overviews = {}
            self.grid.reset(cap.num_layers, cap.num_heads, cap.num_kv_heads, self.trace.num_tokens, GRID_CELLS)
            self.grid.select(self.layer.value(), self.head.value())
            self._tab_changed(self.tabs.currentIndex())

    def _look_changed(self, *_: object) -> None:
        name, log = self.colormap.currentData(), self.log_scale.isChecked()
        for plot in (self.head_panel.heatmap, self.rollout_panel.heatmap, self.stats_map):
            plot.set_colormap(name)
        self.head_panel.heatmap.set_log_scale(log)
        self.rollout_panel.heatmap.set_log_scale(log)
        self.grid.set_options(self.grid_normalise.isChecked(), log, name)

    def _request_head(self) -> None:
        if not self._has_maps():
            return
        source, layer, head = self.selection()
        self.mark_busy()
        self.host.call(targets.ATTENTION_MAP, channel=self.channel("head"), label="Computing the attention map",
                       on_done=self.on_result(self._draw_head, lambda o: self._job_failed("head", o)),
                       trace_id=self.trace.id, source=source, layer=layer, head=head,
                       reduce=self.reduce.currentData(), max_cells=self.head_panel.max_cells(), **self._options())
        if self.head_panel.query_unit is not None:
            self._request_row()

    def _request_head_detail(self, region: tuple[int, int, int, int]) -> None:
        shown = self.head_panel.shown
        if shown is None or not self._has_maps():
            return
        self.host.call(targets.ATTENTION_MAP, channel=self.channel("head_detail"), label="Computing the zoomed region",
                       on_done=self.on_result(self._draw_head_detail, lambda o: self._job_failed("head_detail", o)),
                       trace_id=self.trace.id, source=shown.source, layer=shown.layer, head=shown.head,
                       reduce=self.reduce.currentData(), max_cells=self.head_panel.max_cells(),
                       region=region, **self._options())

    def _query_clicked(self, row: int, _col: int) -> None:
        self.head_panel.query_unit = row
        self._request_row()

    def _request_row(self) -> None:
        shown = self.head_panel.shown
        unit = self.head_panel.query_unit
        if shown is None or unit is None or unit >= shown.positions.size or not self._has_maps():
            return
        source, layer, head = self.selection()
        self.host.call(targets.ATTENTION_ROW, channel=self.channel("row"), label="Computing the query's attention",
                       on_done=self.on_result(lambda row: self._draw_row(row, self.head_panel, "Attention"),
                                              lambda o: self._job_failed("row", o)),
                       trace_id=self.trace.id, query=int(shown.positions[unit]), source=source, layer=layer,
                       head=head, **self._options())

    def _draw_head(self, result: AttentionMap) -> None:
        trace = self.trace
        assert trace is not None and trace.attention is not None
        panel = self.head_panel
        panel.draw(result, self.labels(), "attention weight")
        cap = trace.attention
        hidden = trace.num_tokens - result.positions.size
        parts = [f"{trace.num_tokens:,} tokens" + (f" ({hidden} hidden)" if hidden else ""), result.describe(),
                 panel.resolution_text(result)]
        if result.renormalised:
            parts.append("rows renormalised")
        if trace.num_tokens >= 1024:
            parts.append(f"all maps at once would need {bytes_text(cap.full_bytes())}; computed on demand")
        bad = panel.heatmap.nonfinite_count
        if bad:
            parts.append(f"⚠ {bad} NaN/inf cells shown in red")
        parts.append(f"{result.compute_s * 1000:.0f} ms")
        panel.summary.setText(" · ".join(parts))
        self.show_content()
        self.mark_ready()
        self._prefetch_neighbours(result)

    def _prefetch_neighbours(self, result: AttentionMap) -> None:
        """Precompute, in the background, the maps the arrow keys lead to from this head
        (Right, Left, Down, Up), so that moving there only draws."""
        if result.source != "head" or not self._has_maps():
            return
        layers, heads = self.layer.maximum() + 1, self.head.maximum() + 1
        flat = result.layer * heads + result.head
        picks = [divmod(f, heads) for f in (flat + 1, flat - 1, flat + heads, flat - heads) if 0 <= f < layers * heads]
        # Background work only fills the engine's cache; a failure shows when the head is asked for.
        self.host.call(targets.ATTENTION_PREFETCH, channel=self.channel("prefetch"), background=True,
                       label="Precomputing neighbouring heads", trace_id=self.trace.id, heads=picks,
                       reduce=self.reduce.currentData(),
                                  max_cells=self.head_panel.max_cells(), **self._options())

    def _draw_row(self, row: AttentionRow, panel: AttentionMapPanel, what: str) -> None:
        labels = self.labels()
        names = [labels[p] for p in row.positions]
        query_index = np.searchsorted(row.positions, row.query)
        marker = int(query_index) if query_index < row.positions.size and row.positions[query_index] == row.query else None
        top = np.argsort(np.nan_to_num(row.values, nan=-1.0))[::-1][:3]
        best = ", ".join(f"{names[i]} {row.values[i]:.2f}" for i in top)
        panel.bars.set_values(row.values, names, row.positions,
                              f"{what} of query “{labels[row.query]}” [{row.query}] · top: {best}", marker)
        panel.show_bars()

    # -- grid and statistics (layer by layer, only while shown) ----------------------------
    def _tab_changed(self, index: int) -> None:
        if not self._has_maps():
            return
        if index in (TAB_GRID, TAB_STATS):
            self._next_overview()
            self._draw_stats()
        elif index == TAB_ROLLOUT and self.rollout_panel.shown is None:
            self._request_rollout()

    def _next_overview(self) -> None:
        cap = self.trace.attention if self._has_maps() else None
        if cap is None or self.tabs.currentIndex() not in (TAB_GRID, TAB_STATS):
            return
        missing = [layer for layer in range(cap.num_layers) if layer not in self.overviews]
        if not missing:
            self.grid_status.setText(f"{cap.num_layers} layers × {cap.num_heads} heads, "
                                     f"{self.trace.num_tokens:,} tokens")
            return
        self.grid_status.setText(f"Computing layer {missing[0] + 1} of {cap.num_layers}…")
        self.host.call(targets.ATTENTION_OVERVIEW, channel=self.channel("overview"), label="Overview of all heads",
                       on_done=self.on_result(self._overview_arrived, lambda o: self._job_failed("overview", o)),
                       trace_id=self.trace.id, layer=missing[0], size=GRID_CELLS, reduce=self.reduce.currentData())

    def _draw_stats(self, *_: object) -> None:
        cap = self.trace.attention if self._has_maps() else None
        if cap is None:
            return
        done = sorted(self.overviews)
        done = done[: next((i for i, layer in enumerate(done) if layer != i), len(done))]  # contiguous from 0
        key = self.stat_metric.currentData()
        if not done:
            self.stats_note.setText("Computing…")
            return
        matrix = np.stack([getattr(self.overviews[layer], key) for layer in done])
        g = cap.num_heads // max(1, cap.num_kv_heads)
        heads = [f"H{h}" + (f"·kv{h // g}" if cap.num_kv_heads != cap.num_heads else "") for h in range(cap.num_heads)]
        levels = (0.0, 1.0) if key == "first" else None
        self.stats_map.set_matrix(matrix, [f"L{layer}" for layer in done], heads, levels=levels,
                                  bar_label=METRICS[key][1])
        self.stats_note.setText(METRICS[key][0] + ". " + self._notable(done))

    def _notable(self, done: list[int]) -> str:
        """The heads that stand out: most focused, most local, strongest sinks."""
        def top(key: str, reverse: bool) -> str:
            values = np.stack([getattr(self.overviews[layer], key) for layer in done])
            order = np.argsort(np.nan_to_num(values, nan=np.inf if not reverse else -np.inf), axis=None)
            order = order[::-1] if reverse else order
            return ", ".join(f"L{done[i // values.shape[1]]}H{i % values.shape[1]}" for i in order[:3])
        return (f"Most focused: {top('entropy', False)}. Most local: {top('distance', False)}. "
                f"Strongest sinks: {top('first', True)}.")

    # -- rollout ---------------------------------------------------------------------------
    def _request_rollout(self) -> None:
        if not self._has_maps():
            return
        t = self.trace.num_tokens
        if t > ROLLOUT_MAP_MAX_TOKENS:
            self.rollout_panel.heatmap.setVisible(False)
            self.rollout_panel.summary.setText(
                f"The rollout map multiplies {self.trace.attention.num_layers} T×T matrices (T³ work each); it is drawn "
                f"for texts up to {ROLLOUT_MAP_MAX_TOKENS:,} tokens. For these {t:,} tokens, pick a query token: "
                "its rollout is computed directly.")
            self._request_rollout_row()
            return
        self.rollout_panel.heatmap.setVisible(True)
        self.rollout_panel.summary.setText("Computing the rollout…")
        self.host.call(targets.ATTENTION_MAP, channel=self.channel("rollout"), label="Attention rollout",
                       on_done=self.on_result(self._draw_rollout, lambda o: self._job_failed("rollout", o)),
                       trace_id=self.trace.id, source="rollout", reduce=self.reduce.currentData(),
                       max_cells=self.rollout_panel.max_cells(), **self._options())
        self._request_rollout_row()

    def _request_rollout_detail(self, region: tuple[int, int, int, int]) -> None:
        if self._has_maps():
            self.host.call(targets.ATTENTION_MAP, channel=self.channel("rollout_detail"),
                           label="Computing the zoomed region",
                           on_done=self.on_result(self._draw_rollout_detail, lambda o: self._job_failed("rollout_detail", o)),
                           trace_id=self.trace.id, source="rollout", reduce=self.reduce.currentData(),
                           max_cells=self.rollout_panel.max_cells(), region=region, **self._options())

    def _rollout_clicked(self, row: int, _col: int) -> None:
        shown = self.rollout_panel.shown
        if shown is not None and row < shown.positions.size:
            self.query.setValue(int(shown.positions[row]))

    def _request_rollout_row(self, *_: object) -> None:
        if self._has_maps():
            self.host.call(targets.ATTENTION_ROW, channel=self.channel("rollout_row"), label="Rollout of one token",
                           on_done=self.on_result(lambda row: self._draw_row(row, self.rollout_panel, "Rollout"),
                                                  lambda o: self._job_failed("rollout_row", o)),
                           trace_id=self.trace.id, query=self.query.value(), source="rollout", **self._options())

    def _draw_rollout(self, result: AttentionMap) -> None:
        panel = self.rollout_panel
        panel.draw(result, self.labels(), "rollout weight")
        panel.summary.setText(f"{self.trace.num_tokens:,} tokens · {panel.resolution_text(result)} · row q: how much "
                              f"each input token contributes to position q at the top · {result.compute_s * 1000:.0f} ms")

    # -- results ---------------------------------------------------------------------------
    def _draw_head_detail(self, result: AttentionMap) -> None:
        if self.head_panel.shown is not None:
            self.head_panel.draw_detail(result)

    def _draw_rollout_detail(self, result: AttentionMap) -> None:
        if self.rollout_panel.shown is not None:
            self.rollout_panel.draw_detail(result)

    def _overview_arrived(self, overview: LayerOverview) -> None:
        self.overviews[overview.layer] = overview
        self.grid.set_layer(overview)
        if self.tabs.currentIndex() == TAB_STATS:
            self._draw_stats()
        self._next_overview()

    def _job_failed(self, what: str, outcome: JobOutcome) -> None:
        text = "Cancelled." if outcome.status == "cancelled" else outcome.message
        if what in ("head", "head_detail", "row"):
            self.head_panel.summary.setText(f"⚠ {text}")
            if what == "head":
                self.mark_ready()
        elif what == "overview":
            self.grid_status.setText(f"⚠ {text}")
            self.stats_note.setText(f"⚠ {text}")
        else:
            self.rollout_panel.summary.setText(f"⚠ {text}")

    # -- keyboard --------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and self.tabs.currentIndex() == TAB_HEAD:
            if self.handle_key(event):
                return True
        return super().eventFilter(watched, event)

    def handle_key(self, event: QKeyEvent) -> bool:
        """Left/Right: head (through the layers), Up/Down: layer, Home/End: first/last head,
        Ctrl+Home/Ctrl+End: first/last layer."""
        if not self._has_maps():
            return False
        key, ctrl = event.key(), bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        layers, heads = self.layer.maximum() + 1, self.head.maximum() + 1
        layer, head = self.layer.value(), self.head.value()
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            flat = layer * heads + head + (1 if key == Qt.Key.Key_Right else -1)
            flat = min(max(0, flat), layers * heads - 1)
            layer, head = divmod(flat, heads)
        elif key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            layer = min(max(0, layer + (1 if key == Qt.Key.Key_Down else -1)), layers - 1)
        elif key == Qt.Key.Key_Home:
            layer, head = (0, head) if ctrl else (layer, 0)
        elif key == Qt.Key.Key_End:
            layer, head = (layers - 1, head) if ctrl else (layer, heads - 1)
        else:
            return False
        if (layer, head) != (self.layer.value(), self.head.value()):
            self.set_selection(layer, head)
        return True

    # -- export ----------------------------------------------------------------------------
    def _export_dialog(self, ext: str, detail: bool) -> None:
        names = {"png": "PNG image (*.png)", "svg": "SVG image (*.svg)", "csv": "CSV table (*.csv)"}
        path, _ = QFileDialog.getSaveFileName(self, "Export", f"attention.{ext}", names[ext])
        if path:
            self.export_current(path, detail)

    def export_current(self, path: str, detail: bool = False) -> None:
        """Export the current tab: PNG/SVG of its plot, or CSV of its matrix (token labels)."""
        index = self.tabs.currentIndex()
        if index == TAB_GRID:
            if path.lower().endswith(".csv"):
                write_csv(self.statistics_frame(), path, index=False, float_format="%.6g")
            else:
                self.grid.export(path)
            return
        plot = {TAB_HEAD: self.head_panel.heatmap, TAB_STATS: self.stats_map,
                TAB_ROLLOUT: self.rollout_panel.heatmap}[index]
        plot.export(path, detail=detail)

    def statistics_frame(self) -> pd.DataFrame:
        """Per-head statistics as a table."""
        import pandas as pd
        rows = [{"layer": layer, "head": h, "entropy_bits": float(ov.entropy[h]), "mean_distance_tokens": float(ov.distance[h]),
                 "first_token_share": float(ov.first[h])}
                for layer, ov in sorted(self.overviews.items()) for h in range(ov.entropy.size)]
        return pd.DataFrame(rows, columns=["layer", "head", "entropy_bits", "mean_distance_tokens", "first_token_share"])
