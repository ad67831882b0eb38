"""Attention from scratch: the notebook's SimpleAttention, one matrix at a time, then a real head.

Toy: x, Q = xW_q, K = xW_k, V = xW_v, scores = QKᵀ/√d, softmax, output, for a chosen
embedding size, sequence length and seed (real torch modules, built on the worker).
Real head: the loaded model's own q and k of one head on the current text (after RoPE),
the scaled scores, the mask, the softmax (exactly the Attention dock's map), V and the
head's output.  Signed matrices use a diverging map centred on 0; masked scores (−∞)
are light grey.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QGridLayout,
    QLabel,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core import targets
from ..core.attention_results import WalkStep, Walkthrough
from ..core.results import Trace
from ..core.specs import ModelInfo
from ..widgets.flow_layout import flow_row
from ..widgets.heatmap import HeatmapPlot
from ..widgets.plot_style import keep_title_size
from ..workers.jobs import JobOutcome
from .base import DockView

SIGNED_MAP = "CET-D1"  # blue-white-red, perceptually uniform
PANEL_HEIGHT = 300
#: A panel's smallest width and height in text heights: its title, tick labels, axis titles and
#: colour bar are text, so the room a panel needs grows with the font (presentation mode's is
#: about twice the desktop's).
PANEL_EMS = (14, 9)


def _spin(prefix: str, lo: int, hi: int, value: int, tip: str) -> QSpinBox:
    box = QSpinBox()
    box.setPrefix(prefix)
    box.setRange(lo, hi)
    box.setValue(value)
    box.setKeyboardTracking(False)
    box.setToolTip(tip)
    return box


class ScratchView(DockView):
    NAME = "scratch"
    TITLE = "Attention from scratch"
    AREA = Qt.DockWidgetArea.RightDockWidgetArea
    NEEDS_TRACE = False
    STATE = ("toy_mode", "head_mode", "embed_dim", "seq_len", "seed", "layer", "head")

    def __init__(self, host, parent=None) -> None:
        super().__init__(host, parent)
        self.toy_mode = QRadioButton("Toy SimpleAttention")
        self.head_mode = QRadioButton("A real head of the loaded model")
        self.toy_mode.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.toy_mode)
        group.addButton(self.head_mode)
        self.embed_dim = _spin("embed dim ", 1, 128, 8, "d: the size of each token vector")
        self.seq_len = _spin("tokens ", 1, 64, 6, "sequence length")
        self.seed = _spin("seed ", 0, 99999, 0, "torch.manual_seed for the weights and the input")
        self.layer = _spin("Layer ", 0, 0, 0, "the layer of the real head")
        self.head = _spin("Head ", 0, 0, 0, "the real head")
        self.title = QLabel(" ")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-weight: bold")
        self.note = QLabel(" ")
        self.note.setWordWrap(True)
        # One row on the desktop; in presentation's large fonts it wraps instead of pushing the
        # view past the window's width.
        controls = flow_row(self.toy_mode, self.embed_dim, self.seq_len, self.seed,
                            self.head_mode, self.layer, self.head)
        self.grid = QGridLayout()
        panels = QWidget()
        panels.setLayout(self.grid)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(panels)
        scroll.viewport().installEventFilter(self)
        self.scroll = scroll
        self.columns = 0
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(controls)
        layout.addWidget(self.title)
        layout.addWidget(self.note)
        layout.addWidget(scroll, 1)
        self.plots: dict[str, HeatmapPlot] = {}
        self.shown: Walkthrough | None = None
        for box in (self.embed_dim, self.seq_len, self.seed):
            box.valueChanged.connect(self._toy_changed)
        for box in (self.layer, self.head):
            box.valueChanged.connect(self._head_changed)
        self.toy_mode.toggled.connect(self.request)

    # -- requests ---------------------------------------------------------------------------
    def _toy_changed(self, *_: object) -> None:
        self.toy_mode.setChecked(True)
        self.request()

    def _head_changed(self, *_: object) -> None:
        self.head_mode.setChecked(True)
        self.request()

    def request(self, *_: object) -> None:
        self.mark_busy()
        if self.toy_mode.isChecked():
            self.host.call(targets.SCRATCH_TOY, channel=self.channel("walk"), label="Attention from scratch",
                           on_done=self._walked, embed_dim=self.embed_dim.value(), seq_len=self.seq_len.value(),
                           seed=self.seed.value())
            return
        trace = self.trace
        if trace is None or trace.is_empty or trace.attention is None:
            self.note.setText("⚠ " + (trace.attention_note if trace is not None and trace.attention_note else
                                       "Run some text through a model to walk through one of its heads."))
            self.mark_ready()
            return
        self.host.call(targets.SCRATCH_HEAD, channel=self.channel("walk"), label="Walking through one head",
                       on_done=self._walked, trace_id=trace.id, layer=self.layer.value(), head=self.head.value())

    # -- hooks ------------------------------------------------------------------------------
    def model_changed(self, info: ModelInfo) -> None:
        for box, count in ((self.layer, info.num_layers), (self.head, info.num_heads)):
            box.blockSignals(True)
            box.setRange(0, max(0, count - 1))
            box.setSuffix(f" / {max(0, count - 1)}")
            box.blockSignals(False)
        if self.toy_mode.isChecked():
            self.request()

    def trace_changed(self, trace: Trace) -> None:
        """The toy needs no text (NEEDS_TRACE = False); the real head follows the current trace."""
        if self.head_mode.isChecked():
            self.request()
        else:
            self.mark_ready()

    def _walked(self, outcome: JobOutcome) -> None:
        if outcome.ok:
            self.draw(outcome.value)
        elif outcome.status == "failed":
            self.note.setText(f"⚠ {outcome.message}")
        self.show_content()
        self.mark_ready()

    # -- drawing ----------------------------------------------------------------------------
    def _labels(self, walk: Walkthrough, kind: str, n: int) -> list[str]:
        if kind == "dims":
            return [f"d{i}" for i in range(n)]
        if walk.kind == "head" and self.trace is not None and self.trace.id == walk.trace_id:
            return self.trace.labels()[:n]
        return [f"x{i}" for i in range(n)]

    def _plot(self, step: WalkStep) -> HeatmapPlot:
        plot = self.plots.get(step.name)
        if plot is None:
            plot = HeatmapPlot()
            keep_title_size(plot.item, "11pt")
            self.plots[step.name] = plot
        return plot

    # -- the grid ---------------------------------------------------------------------------
    def panel_width(self) -> int:
        """The narrowest a panel can be in the current font."""
        return PANEL_EMS[0] * self.fontInfo().pixelSize()

    def _wanted_columns(self) -> int:
        """As many columns as fit the scroll area's width at panel_width, at most the walk's own
        (4 for the toy's seven matrices, 3 for a real head's)."""
        most = 4 if self.shown is None or self.shown.kind == "toy" else 3
        return max(1, min(most, self.scroll.viewport().width() // max(1, self.panel_width())))

    def arrange(self, force: bool = False) -> None:
        """Lay the shown walk's panels out in as many columns as fit, each at least a panel's
        size in the current font (the font changes on entering and leaving presentation)."""
        if self.shown is None:
            return
        columns = self._wanted_columns()
        if columns == self.columns and not force:
            return
        self.columns = columns
        px = self.fontInfo().pixelSize()
        while self.grid.count():
            self.grid.takeAt(0)
        for i, step in enumerate(self.shown.steps):
            plot = self.plots[step.name]
            plot.setMinimumSize(self.panel_width(), max(PANEL_HEIGHT, PANEL_EMS[1] * px))
            self.grid.addWidget(plot, i // columns, i % columns)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and watched is self.scroll.viewport():
            self.arrange()
        return super().eventFilter(watched, event)

    def changeEvent(self, event: QEvent) -> None:
        """A new font (presentation mode's style sheet) changes the panels' smallest size."""
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self.arrange(force=True)

    def draw(self, walk: Walkthrough) -> None:
        self.shown = walk
        while self.grid.count():
            self.grid.takeAt(0).widget().setParent(None)
        for step in walk.steps:
            plot = self._plot(step)
            m = step.matrix
            rows = self._labels(walk, step.rows, m.shape[0])
            cols = self._labels(walk, step.cols, m.shape[1])
            finite = m[np.isfinite(m)]
            if step.signed:
                bound = float(np.abs(finite).max()) if finite.size else 1.0
                levels, cmap = (-max(bound, 1e-6), max(bound, 1e-6)), SIGNED_MAP
            else:
                levels, cmap = (0.0, 1.0), "viridis"
            plot.set_colormap(cmap)
            plot.set_matrix(m, rows, cols, levels=levels, bar_label=step.name)
            plot.item.setTitle(step.formula)
            plot.item.setLabel("left", "token" if step.rows == "tokens" else "dimension")
            plot.item.setLabel("bottom", "token (key)" if step.cols == "tokens" else "dimension")
        self.arrange(force=True)
        self.title.setText(walk.title)
        pipeline = ("x → Q, K, V → scores → softmax → weights → output" if walk.kind == "toy" else
                    "q, k (the model's own, after RoPE where it uses RoPE) → scores → mask → softmax → weights "
                    "(= the Attention dock's map) → weights · v = output (this head's share of the layer output)")
        self.note.setText(pipeline + (f"   ⚠ {walk.note}" if walk.note else "") + "   · hover a cell for its value")
