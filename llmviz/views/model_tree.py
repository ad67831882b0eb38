"""Model tree: the module hierarchy with parameter counts, storage, dtype, device and shapes.

A QAbstractItemModel over the flat `ModuleTree` arrays (children in CSR arrays, each
node's row precomputed), so Qt asks only for the rows it shows and every index/parent
call is O(1): a model with 10^5 modules opens in well under a second.  Selecting a
module shows the configuration values that concern it at once and asks the worker
for a histogram of its weights (dequantized for bitsandbytes weights).
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTextBrowser,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from ..core import targets
from ..core.formatting import bytes_text
from ..core.results import Trace
from ..core.specs import ModelInfo
from ..core.structure_results import ModuleTree, WeightHistogram, config_for_module
from ..widgets.plot_export import save_csv
from ..widgets.plot_style import style_plot
from ..workers.jobs import JobOutcome
from .base import DockView

COLUMNS = ("Module", "Class", "Parameters", "Own", "Trainable", "dtype", "Device", "Bytes", "Parameter shapes")
NUMERIC = {2, 3, 4, 7}
WIDTHS = (230, 150, 110, 95, 95, 75, 55, 85)
TIED_COLOR = QColor("#B35900")
QUANT_COLOR = QColor("#5B2C8F")
Index = QModelIndex | QPersistentModelIndex


class ModuleTreeModel(QAbstractItemModel):
    """Tree model whose internal ids are node indices + 1 (0 means 'no node')."""

    def __init__(self, tree: ModuleTree | None = None) -> None:
        super().__init__()
        self.tree = tree

    def set_tree(self, tree: ModuleTree | None) -> None:
        self.beginResetModel()
        self.tree = tree
        self.endResetModel()

    def node(self, index: Index) -> int:
        return index.internalId() - 1 if index.isValid() else -1

    def index_of_node(self, node: int, column: int = 0) -> QModelIndex:
        if self.tree is None or node < 0:
            return QModelIndex()
        return self.createIndex(int(self.tree.row[node]), column, node + 1)

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:
        if self.tree is None or len(self.tree) == 0:
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, 1) if row == 0 else QModelIndex()
        node = self.node(parent)
        if 0 <= row < self.tree.num_children(node):
            return self.createIndex(row, column, self.tree.child(node, row) + 1)
        return QModelIndex()

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:
        if self.tree is None or not index.isValid():
            return QModelIndex()
        return self.index_of_node(int(self.tree.parent[self.node(index)]))

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        if self.tree is None or len(self.tree) == 0:
            return 0
        if not parent.isValid():
            return 1
        if parent.column() != 0:
            return 0
        return self.tree.num_children(self.node(parent))

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return len(COLUMNS)

    def hasChildren(self, parent: Index = QModelIndex()) -> bool:
        return self.rowCount(parent) > 0

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def text(self, i: int, col: int) -> str:
        t = self.tree
        assert t is not None
        tied = bool(t.tied(i))
        if col == 0:
            return t.name(i) + ("  (tied)" if tied else "")
        if col == 1:
            return t.classes[i]
        if col == 2:
            return f"{int(t.total_params[i]):,}"
        if col == 3:
            if tied and not t.own_params[i]:
                return "tied (0)"
            return f"{int(t.own_params[i]):,}"
        if col == 4:
            return f"{int(t.trainable_params[i]):,}"
        if col == 5:
            return t.dtypes[i] + (" (quantized)" if t.quantized[i] else "")
        if col == 6:
            return t.devices[i]
        if col == 7:
            return bytes_text(int(t.storage_bytes[i]))
        return t.shapes(i)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if self.tree is None or not index.isValid():
            return None
        t, i, col = self.tree, self.node(index), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(i, col)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            if t.tied(i):
                return QBrush(TIED_COLOR)
            if t.quantized[i] and col in (5, 8):
                return QBrush(QUANT_COLOR)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(i)
        return None

    def tooltip(self, i: int) -> str:
        t = self.tree
        assert t is not None
        lines = [t.paths[i] or "(whole model)", t.classes[i],
                 f"{int(t.total_params[i]):,} parameters in this subtree (each shared weight once)",
                 f"{bytes_text(int(t.storage_bytes[i]))} of parameter storage"]
        if t.tied(i):
            lines.append("Shares weights with another module (counted once, at their first owner): " + t.tied(i))
        if t.quantized[i]:
            lines.append("Quantized: counts are the weights represented; bytes are the real storage "
                         "(packed values plus scales).")
        return "\n".join(lines)


class ModelTreeView(DockView):
    NAME = "model-tree"
    TITLE = "Model tree"
    AREA = Qt.DockWidgetArea.LeftDockWidgetArea
    NEEDS_TRACE = False
    STATE = ("depth", "search", "log_counts")

    def __init__(self, host, parent=None) -> None:
        super().__init__(host, parent)
        self.setMinimumWidth(380)  # below this the columns and the details cannot be read
        self.model = ModuleTreeModel()
        self.tree_view = QTreeView()
        self.tree_view.setModel(self.model)
        self.tree_view.setUniformRowHeights(True)
        self.tree_view.setAlternatingRowColors(True)
        header = self.tree_view.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.tree_view.selectionModel().currentChanged.connect(self._on_current)
        self.total = QLabel()
        self.total.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.total.setWordWrap(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self._build_controls()
        self._build_details()
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.tree_view)
        splitter.addWidget(self.info_text)
        splitter.addWidget(self.histogram_panel)
        for pane, stretch in enumerate((5, 2, 3)):
            splitter.setStretchFactor(pane, stretch)
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.total)
        layout.addLayout(self.controls)
        layout.addWidget(self.status)
        layout.addWidget(splitter, 1)
        self.status.hide()
        self._matches: list[int] = []
        self._match_pos = -1
        self.selected_path: str | None = None
        self.histogram: WeightHistogram | None = None

    # -- construction ------------------------------------------------------------------
    def _build_controls(self) -> None:
        self.search = QLineEdit()
        self.search.setPlaceholderText("Find module by name or class (e.g. layers.3.mlp, RMSNorm)")
        self.search.setClearButtonEnabled(True)
        self.search.returnPressed.connect(self.find_next)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(250)
        self._search_timer.timeout.connect(self._update_matches)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.prev_button = QPushButton("◀")
        self.prev_button.setToolTip("Previous match (Shift+Enter)")
        self.prev_button.clicked.connect(self.find_previous)
        self.next_button = QPushButton("▶")
        self.next_button.setToolTip("Next match (Enter)")
        self.next_button.clicked.connect(self.find_next)
        for b in (self.prev_button, self.next_button):
            b.setFixedWidth(32)
        self.match_label = QLabel()
        self.depth = QSpinBox()
        self.depth.setRange(0, 12)
        self.depth.setPrefix("Expand to depth ")
        self.depth.setValue(1)
        self.depth.setToolTip("Show every module down to this depth (0: only the model)")
        self.depth.valueChanged.connect(self.expand_to_depth)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Save every module's row (path, class, counts, bytes, dtype, shapes) as CSV")
        self.export_button.clicked.connect(self._ask_export)
        find_row = QHBoxLayout()
        find_row.addWidget(self.search, 1)
        find_row.addWidget(self.prev_button)
        find_row.addWidget(self.next_button)
        tool_row = QHBoxLayout()
        tool_row.addWidget(self.depth)
        tool_row.addWidget(self.match_label, 1)
        tool_row.addWidget(self.export_button)
        self.controls = QVBoxLayout()
        self.controls.setSpacing(2)
        self.controls.addLayout(find_row)
        self.controls.addLayout(tool_row)

    def _build_details(self) -> None:
        """Below the tree: the selected module's facts, then its weight histogram."""
        self.info_text = QTextBrowser()
        self.info_text.setOpenLinks(False)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(160)
        self.hist_item = pg.PlotDataItem(stepMode="center", fillLevel=0, brush=pg.mkBrush("#0072B2AA"),
                                         pen=pg.mkPen("#00507F", width=1))
        self.plot.addItem(self.hist_item)
        style_plot(self.plot.getPlotItem(), left="count", bottom="weight value")
        self.plot_message = pg.TextItem("", color="#555", anchor=(0.5, 0.5))
        self.plot.addItem(self.plot_message)
        self.log_counts = QCheckBox("log count")
        self.log_counts.setToolTip("Show log10(count + 1): makes the rare large weights visible beside the peak")
        self.log_counts.toggled.connect(self._redraw_histogram)
        self.hist_title = QLabel()
        self.hist_title.setWordWrap(True)
        head = QHBoxLayout()
        head.addWidget(self.hist_title, 1)
        head.addWidget(self.log_counts)
        self.histogram_panel = QWidget()
        panel = QVBoxLayout(self.histogram_panel)
        panel.setContentsMargins(0, 0, 0, 0)
        panel.addLayout(head)
        panel.addWidget(self.plot, 1)

    # -- model and trace -----------------------------------------------------------------
    def model_changed(self, info: ModelInfo) -> None:
        self.show_message(f"Reading the module tree of {info.title}…")
        self.selected_path = None
        self.host.call(targets.STRUCTURE_TREE, label="Reading the module tree", on_done=self._tree_done)

    def on_trace(self, trace: Trace) -> None:
        """The module tree does not depend on the text: keep showing it, whatever the text."""
        self.trace = trace

    def _tree_done(self, outcome: JobOutcome) -> None:
        if outcome.ok:
            self.set_tree(outcome.value)
        elif outcome.status == "failed":
            self.show_message(outcome.message)
            self.mark_ready()

    def set_tree(self, tree: ModuleTree) -> None:
        self.model.set_tree(tree)
        self._matches, self._match_pos = [], -1
        self._update_summary(tree)
        for col, width in enumerate(WIDTHS):
            self.tree_view.setColumnWidth(col, width)
        self.expand_to_depth(self.depth.value())
        self.show_content()
        if self.search.text().strip():
            self._update_matches()
        self.select_node(0)
        self.mark_ready()

    def _update_summary(self, tree: ModuleTree) -> None:
        info = self.info
        title = html.escape(info.title if info else "Model")
        parts = [f"<b>{title}</b>: {tree.total:,} parameters", f"{bytes_text(int(tree.storage_bytes[0]))} in memory",
                 f"{len(tree):,} modules"]
        if info:
            parts.append(f"{info.num_layers} layers · hidden {info.hidden_size} · {info.num_heads} heads · "
                         f"vocab {info.vocab_size:,}")
        ties = tree.tied_pairs()
        if ties:
            shared = "; ".join(f"{html.escape(a)} = {html.escape(b)}" for a, b, _ in ties)
            parts.append(f"<span style='color:{TIED_COLOR.name()}'>tied, counted once: {shared}</span>")
        if any(tree.quantized):
            parts.append(f"<span style='color:{QUANT_COLOR.name()}'>quantized weights counted as the weights they "
                         "represent; bytes are real storage</span>")
        self.total.setText(" · ".join(parts))

    # -- navigation ------------------------------------------------------------------------
    def expand_to_depth(self, depth: int) -> None:
        self.tree_view.collapseAll()
        if self.model.tree is not None and len(self.model.tree):
            if depth > 0:
                self.tree_view.expandRecursively(self.model.index(0, 0), depth - 1)
            else:
                self.tree_view.collapse(self.model.index(0, 0))

    def select_node(self, node: int) -> None:
        tree = self.model.tree
        if tree is None or not 0 <= node < len(tree):
            return
        for ancestor in tree.ancestors(node)[:-1]:
            self.tree_view.expand(self.model.index_of_node(ancestor))
        index = self.model.index_of_node(node)
        self.tree_view.setCurrentIndex(index)
        self.tree_view.scrollTo(index)

    def select_path(self, path: str) -> bool:
        tree = self.model.tree
        node = tree.index_of_path(path) if tree is not None else -1
        self.select_node(node)
        return node >= 0

    def _update_matches(self) -> None:
        tree = self.model.tree
        text = self.search.text().strip()
        self._matches = tree.matches(text) if tree is not None else []
        self._match_pos = -1
        if not text:
            self.match_label.setText("")
        elif not self._matches:
            self.match_label.setText(f"<span style='color:#B00020'>no module matches {html.escape(text)!r}</span>")
        else:
            self.match_label.setText(f"{len(self._matches):,} matches")

    def _step(self, direction: int) -> None:
        if self._search_timer.isActive() or not self._matches:
            self._search_timer.stop()
            self._update_matches()
        if not self._matches:
            return
        self._match_pos = (self._match_pos + direction) % len(self._matches)
        self.select_node(self._matches[self._match_pos])
        self.match_label.setText(f"{self._match_pos + 1:,} of {len(self._matches):,}")

    def find_next(self) -> None:
        """Select the next module whose path or class contains the search text."""
        self._step(+1)

    def find_previous(self) -> None:
        self._step(-1)

    # -- details ------------------------------------------------------------------------------
    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        tree = self.model.tree
        node = self.model.node(current)
        if tree is None or node < 0:
            return
        path = tree.paths[node]
        if path == self.selected_path:
            return
        self.selected_path = path
        self.info_text.setHtml(self.details_html(node))
        self._show_plot_message("Computing the histogram…")
        self.host.call(targets.STRUCTURE_WEIGHTS, label=f"Histogram of {path or 'the whole model'}",
                       on_done=self._weights_finished, path=path)

    def details_html(self, node: int) -> str:
        t = self.model.tree
        assert t is not None
        esc = html.escape
        rows = [("Class", t.classes[node]), ("Parameters", f"{int(t.total_params[node]):,}"),
                ("Own parameters", f"{int(t.own_params[node]):,}"), ("Trainable", f"{int(t.trainable_params[node]):,}"),
                ("Storage", bytes_text(int(t.storage_bytes[node]))), ("Children", f"{t.num_children(node):,}")]
        if t.dtypes[node]:
            rows.append(("dtype / device", f"{t.dtypes[node]} / {t.devices[node]}"))
        if t.per_use_params[node] != t.total_params[node]:
            rows.append(("Counted per use", f"{int(t.per_use_params[node]):,} (a shared weight counted at each use)"))
        table = "".join(f"<tr><td><b>{esc(k)}</b></td><td>{esc(v)}</td></tr>" for k, v in rows)
        out = [f"<h3 style='margin:0'>{esc(t.paths[node] or '(whole model)')}</h3><table cellspacing=3>{table}</table>"]
        if t.params[node]:
            items = "".join(f"<li>{esc(p.text())}</li>" for p in t.params[node])
            out.append(f"<p><b>Parameters of this module</b></p><ul style='margin-top:0'>{items}</ul>")
        config = config_for_module(self.info.config, t.paths[node], t.classes[node]) if self.info else []
        if config:
            cfg = "".join(f"<tr><td>{esc(k)}</td><td>{esc(str(v))}</td></tr>" for k, v in config)
            out.append(f"<p><b>Configuration values that concern it</b></p><table cellspacing=2>{cfg}</table>")
        return "".join(out)

    def _weights_finished(self, outcome: JobOutcome) -> None:
        if outcome.kwargs.get("path") != self.selected_path:
            return
        if not outcome.ok:
            if outcome.status == "failed":
                self._show_plot_message(outcome.message)
            return
        self.draw_histogram(outcome.value)

    def draw_histogram(self, hist: WeightHistogram) -> None:
        self.histogram = hist
        if hist.empty:
            self._show_plot_message(hist.note or "No weights.")
            return
        self.plot_message.setText("")
        counts = hist.counts.astype(np.float64)
        log = self.log_counts.isChecked()
        self.hist_item.setData(hist.edges, np.log10(counts + 1) if log else counts)
        self.plot.getPlotItem().setLabel("left", "log₁₀(count + 1)" if log else "count")
        note = f" · {hist.note}" if hist.note else ""
        self.hist_title.setText(
            f"<b>{html.escape(hist.path or 'whole model')}</b>: {hist.count:,} weights in {hist.tensors} tensors · "
            f"mean {hist.mean:.3g} · std {hist.std:.3g} · range [{hist.min:.3g}, {hist.max:.3g}] · "
            f"{hist.zeros:,} exact zeros{html.escape(note)}")
        self.plot.autoRange()

    def _redraw_histogram(self) -> None:
        if self.histogram is not None:
            self.draw_histogram(self.histogram)

    def _show_plot_message(self, text: str) -> None:
        self.hist_item.setData([], [])
        self.hist_title.setText("")
        self.plot_message.setText(text)
        self.plot.setXRange(0, 1)
        self.plot.setYRange(0, 1)
        self.plot_message.setPos(0.5, 0.5)

    # -- export ------------------------------------------------------------------------------
    def _ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the module tree", "model_tree.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str) -> bool:
        """Write one row per module; a failure is shown above the tree and nothing else changes."""
        tree = self.model.tree
        if tree is None:
            return False
        return save_csv(tree.to_frame(), path, self.status, f"Saved {len(tree):,} modules to {path}")
