"""Projection dock: token vectors in 2-D (PCA), per layer or as trajectories through the layers."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from ..core import targets
from ..core.embeddings_results import Projection, layer_name
from ..core.results import Trace
from ..core.specs import ModelInfo
from ..widgets.layer_slider import layer_slider, layer_text, set_layers
from ..widgets.plot_export import ask_image_path, export_plot
from ..workers.jobs import JobOutcome
from .base import DockView

MAX_LABELS = 80  # token labels drawn on the plot; every point has a hover read-out
COLORMAP = "viridis"


class ProjectionView(DockView):
    NAME = "projection"
    TITLE = "Projection"
    AREA = Qt.DockWidgetArea.RightDockWidgetArea
    STATE = ("mode", "unit", "slider")

    def __init__(self, host, parent=None) -> None:
        super().__init__(host, parent)
        self.mode = QComboBox()
        self.mode.addItem("One layer", "layer")
        self.mode.addItem("Trajectories through the layers", "trajectories")
        self.slider, self.layer_label = layer_slider(label_width=160)
        self.unit = QCheckBox("Unit length")
        self.unit.setChecked(True)
        self.unit.setToolTip("Scale every vector to length 1 before PCA (the geometry of cosine similarity). "
                             "Without it a few very long vectors (often the first token) dominate the picture.")
        export = QPushButton("Export image…")
        export.clicked.connect(self._export_dialog)
        controls = QHBoxLayout()
        controls.addWidget(self.mode)
        controls.addWidget(QLabel("Layer:"))
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.layer_label)
        controls.addWidget(self.unit)
        controls.addWidget(export)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.item = self.plot.getPlotItem()
        self.item.showGrid(x=True, y=True, alpha=0.25)
        self.item.setAspectLocked(False)
        for side in ("bottom", "left"):
            self.item.getAxis(side).enableAutoSIPrefix(False)
        self.scatter = pg.ScatterPlotItem(size=9, pen=pg.mkPen("#333", width=0.6), hoverable=True,
                                          hoverSize=14, tip=self._tip)
        self.paths = pg.PlotDataItem(connect="finite", pen=pg.mkPen((90, 90, 90, 110), width=1))
        self.starts = pg.ScatterPlotItem(size=5, pen=None, brush=pg.mkBrush(150, 150, 150, 180))
        self.item.addItem(self.paths)
        self.item.addItem(self.starts)
        self.item.addItem(self.scatter)
        self.text_items: list[pg.TextItem] = []
        self.readout = QLabel(" ")
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self.summary)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.readout)
        self.projection: Projection | None = None
        self._labels: list[str] = []
        self.slider.valueChanged.connect(self.redraw)
        self.mode.currentIndexChanged.connect(lambda _i: self.redraw())
        self.unit.toggled.connect(lambda _c: self.request())
        self.scatter.sigHovered.connect(self._on_hover)

    def model_changed(self, info: ModelInfo) -> None:
        set_layers(self.slider, info.num_layers, info.num_layers)  # the last hidden state, as the notebook uses
        self.projection = None

    def trace_changed(self, trace: Trace) -> None:
        self.projection = None
        if trace.num_tokens < 2:
            self.show_message("A projection needs at least two tokens.")
            self.mark_ready()
            return
        self.request()

    def request(self) -> None:
        if self.trace is None or self.trace.num_tokens < 2:
            return
        self.mark_busy()
        self.host.call(targets.PROJECTION, label="Projecting token vectors", on_done=self._projected,
                       trace_id=self.trace.id, unit_length=self.unit.isChecked())

    def _projected(self, outcome: JobOutcome) -> None:
        if self.trace is None or outcome.kwargs.get("trace_id") != self.trace.id:
            return
        if not outcome.ok:
            self.show_failure(outcome)
            return
        self.projection = outcome.value
        self._labels = self.trace.labels()
        self.redraw()

    # -- drawing -------------------------------------------------------------------------------
    def _colors(self, n: int) -> list:
        cmap = pg.colormap.get(COLORMAP)
        return [pg.mkBrush(c) for c in cmap.map(np.linspace(0.0, 0.9, max(1, n)), mode="qcolor")]

    def redraw(self) -> None:
        proj, trace = self.projection, self.trace
        if proj is None or trace is None or proj.trace_id != trace.id:
            return
        num_layers = proj.per_layer.shape[0] - 1
        layer = min(self.slider.value(), num_layers)
        trajectories = self.mode.currentData() == "trajectories"
        self.slider.setEnabled(not trajectories)
        self.layer_label.setText("all layers" if trajectories else layer_text(layer, num_layers))
        t = proj.per_layer.shape[1]
        brushes = self._colors(t)
        if trajectories:
            coords, frac = proj.shared[-1], proj.shared_explained
            paths = np.full((t, num_layers + 2, 2), np.nan, np.float32)  # each path then a NaN gap
            paths[:, :-1] = proj.shared.transpose(1, 0, 2)
            self.paths.setData(paths[..., 0].ravel(), paths[..., 1].ravel())
            self.starts.setData(pos=proj.shared[0])
            what = (f"Each token's path from the embeddings (grey dot) to the last layer (coloured dot), in one PCA "
                    f"fitted on all {num_layers + 1} layers' vectors ({proj.shared_fit_rows:,} vectors).")
        else:
            coords, frac = proj.per_layer[layer], proj.per_layer_explained[layer]
            self.paths.setData([], [])
            self.starts.setData([])
            what = f"PCA of the {t:,} token vectors at {layer_name(layer, num_layers)}."
        self.scatter.setData(pos=coords, brush=brushes, data=np.arange(t))
        self._draw_labels(coords)
        unit = "unit-length vectors" if proj.unit_length else "raw vectors"
        self.item.setLabel("bottom", f"PC1 ({frac[0] * 100:.1f}% of variance)")
        self.item.setLabel("left", f"PC2 ({frac[1] * 100:.1f}% of variance)")
        self.summary.setText(f"{what} {unit}; colour = position (dark = first, yellow = last). "
                             f"Hover a point for its token.")
        self.item.getViewBox().autoRange(padding=0.08)  # room for the labels right of the points
        self.show_content()
        self.mark_ready()

    def _draw_labels(self, coords: np.ndarray) -> None:
        """Label every token, or every k-th of a long text; the items are kept and reused between draws."""
        t = coords.shape[0]
        step = max(1, int(np.ceil(t / MAX_LABELS)))
        shown = list(range(0, t, step))
        font = QFont("DejaVu Sans", 9)
        while len(self.text_items) < len(shown):
            item = pg.TextItem("", color="#202020", anchor=(0, 1))
            item.setFont(font)
            self.item.addItem(item, ignoreBounds=True)
            self.text_items.append(item)
        for item, i in zip(self.text_items, shown):
            item.setText(self._labels[i] if i < len(self._labels) else str(i))
            item.setPos(float(coords[i, 0]), float(coords[i, 1]))
            item.setVisible(True)
        for item in self.text_items[len(shown):]:
            item.setVisible(False)

    def _tip(self, x: float, y: float, data: int) -> str:
        label = self._labels[int(data)] if 0 <= int(data) < len(self._labels) else ""
        return f"{label} [{int(data)}]  ({x:.3g}, {y:.3g})"

    def _on_hover(self, _item, points, _ev) -> None:
        if len(points):
            p = points[0]
            self.readout.setText(self._tip(p.pos().x(), p.pos().y(), p.data()))

    # -- export ---------------------------------------------------------------------------------
    def export_image(self, path: str) -> None:
        export_plot(self.item, path)

    def _export_dialog(self) -> None:
        path = ask_image_path(self, "projection")
        if path:
            self.export_image(path)
