"""Model tree: the module hierarchy with class, parameter counts, dtype and device.

A QAbstractItemModel over the flat `ModuleTree` arrays: Qt asks only for the rows it
shows, so models with hundreds of thousands of modules open quickly.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import QHBoxLayout, QHeaderView, QLabel, QLineEdit, QSpinBox, QTreeView, QVBoxLayout

from ..core.specs import ModelInfo
from ..core.structure import ModuleTree
from ..workers.model_host import JobOutcome
from .base import DockView

COLUMNS = ("Module", "Class", "Parameters", "Own", "Trainable", "dtype", "Device", "Parameter shapes")
NUMERIC = {2, 3, 4}
Index = QModelIndex | QPersistentModelIndex


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


class ModuleTreeModel(QAbstractItemModel):
    """Tree model whose internal ids are node indices (+1, so 0 means 'no node')."""

    def __init__(self, tree: ModuleTree | None = None) -> None:
        super().__init__()
        self.tree = tree

    def set_tree(self, tree: ModuleTree | None) -> None:
        self.beginResetModel()
        self.tree = tree
        self.endResetModel()

    def node(self, index: Index) -> int:
        return index.internalId() - 1 if index.isValid() else -1

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:
        if self.tree is None or len(self.tree) == 0:
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, 1) if row == 0 else QModelIndex()
        kids = self.tree.children[self.node(parent)]
        if 0 <= row < len(kids):
            return self.createIndex(row, column, kids[row] + 1)
        return QModelIndex()

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        if self.tree is None or not index.isValid():
            return QModelIndex()
        node = self.node(index)
        p = int(self.tree.parent[node])
        if p < 0:
            return QModelIndex()
        gp = int(self.tree.parent[p])
        row = 0 if gp < 0 else self.tree.children[gp].index(p)
        return self.createIndex(row, 0, p + 1)

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        if self.tree is None or len(self.tree) == 0:
            return 0
        if not parent.isValid():
            return 1
        if parent.column() != 0:
            return 0
        return len(self.tree.children[self.node(parent)])

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return len(COLUMNS)

    def hasChildren(self, parent: Index = QModelIndex()) -> bool:
        return self.rowCount(parent) > 0

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if self.tree is None or not index.isValid():
            return None
        t, i, col = self.tree, self.node(index), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return t.name(i) + ("  (tied)" if t.tied[i] and not t.own_params[i] else "")
            if col == 1:
                return t.classes[i]
            if col == 2:
                return f"{int(t.total_params[i]):,}"
            if col == 3:
                return f"{int(t.own_params[i]):,}" if t.own_params[i] or not t.tied[i] else "tied"
            if col == 4:
                return f"{int(t.trainable_params[i]):,}"
            if col == 5:
                return t.dtypes[i]
            if col == 6:
                return t.devices[i]
            if col == 7:
                return t.shapes[i]
        if role == Qt.ItemDataRole.TextAlignmentRole and col in NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [t.paths[i] or "(root)", f"{t.classes[i]}", f"{int(t.total_params[i]):,} parameters in this subtree",
                     f"{human_bytes(int(t.storage_bytes[i]))} of parameter storage"]
            if t.tied[i]:
                lines.append("Shares weights (counted once, at their first owner): " + t.tied[i])
            if t.quantized[i]:
                lines.append("Quantized: counts are the weights represented; bytes are real storage.")
            return "\n".join(lines)
        return None


class ModelTreeView(DockView):
    NAME = "model-tree"
    TITLE = "Model tree"
    AREA = Qt.DockWidgetArea.LeftDockWidgetArea
    NEEDS_TRACE = False

    def __init__(self, host, parent=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(host, parent)
        self.model = ModuleTreeModel()
        self.tree_view = QTreeView()
        self.tree_view.setModel(self.model)
        self.tree_view.setUniformRowHeights(True)
        self.tree_view.setAlternatingRowColors(True)
        header = self.tree_view.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.total = QLabel()
        self.total.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.total.setWordWrap(True)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Find module (e.g. layers.3.mlp)")
        self.search.setClearButtonEnabled(True)
        self.search.returnPressed.connect(self.find_next)
        self.depth = QSpinBox()
        self.depth.setRange(0, 12)
        self.depth.setPrefix("Expand to depth ")
        self.depth.setValue(1)
        self.depth.valueChanged.connect(self._expand)
        controls = QHBoxLayout()
        controls.addWidget(self.search, 1)
        controls.addWidget(self.depth)
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.total)
        layout.addLayout(controls)
        layout.addWidget(self.tree_view, 1)
        self._match_from = 0

    def model_changed(self, info: ModelInfo) -> None:
        self.show_message(f"Reading the module tree of {info.title}…")
        self.host.call(f"{self.NAME}.structure", "llmviz.core.jobs.structure", "Reading the module tree")

    def job_finished(self, outcome: JobOutcome) -> None:
        if outcome.ok:
            self.set_tree(outcome.value)
        elif outcome.status == "failed":
            self.show_message(outcome.message)
            self.mark_ready()

    def set_tree(self, tree: ModuleTree) -> None:
        self.model.set_tree(tree)
        info = self.info
        title = info.title if info else "Model"
        self.total.setText(
            f"<b>{title}</b>: {tree.total:,} parameters"
            + (f" · {info.num_layers} layers · hidden {info.hidden_size} · {info.num_heads} heads"
               f" · vocab {info.vocab_size:,}" if info else "")
            + (" · tied weights counted once" if any(tree.tied) else "")
        )
        self._expand(self.depth.value())
        for col, width in ((0, 220), (1, 150), (2, 110), (3, 100), (4, 100), (5, 70), (6, 60)):
            self.tree_view.setColumnWidth(col, width)
        self.show_content()
        self.mark_ready()

    def _expand(self, depth: int) -> None:
        self.tree_view.collapseAll()
        if self.model.tree is not None and len(self.model.tree):
            self.tree_view.expandRecursively(self.model.index(0, 0), depth)

    def index_of(self, node: int) -> QModelIndex:
        tree = self.model.tree
        assert tree is not None
        chain = []
        while node >= 0:
            chain.append(node)
            node = int(tree.parent[node])
        index = self.model.index(0, 0)
        for child in reversed(chain[:-1]):
            parent_node = self.model.node(index)
            index = self.model.index(tree.children[parent_node].index(child), 0, index)
        return index

    def find_next(self) -> None:
        """Select the next module whose path contains the search text."""
        tree, text = self.model.tree, self.search.text().strip().lower()
        if tree is None or not text:
            return
        n = len(tree)
        for k in range(n):
            i = (self._match_from + k) % n
            if text in tree.paths[i].lower() or text in tree.classes[i].lower():
                index = self.index_of(i)
                self.tree_view.setCurrentIndex(index)
                self.tree_view.scrollTo(index)
                self._match_from = i + 1
                return
        self.total.setToolTip(f"No module matches {text!r}")
