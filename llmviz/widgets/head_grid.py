"""The model view: one thumbnail per (layer, head), as bertviz's model view, in one image.

All thumbnails live in one float mosaic drawn by a single ImageItem (270 separate plots
would take seconds to lay out).  One axis is layers, the other query heads, grouped under
the key/value head they share in grouped-query models (wider gaps between groups).
The longer of the two runs across.
Gaps and thumbnails not computed yet are NaN in the float mosaic; what is drawn is an RGBA
copy coloured here, one layer's strip at a time, with those cells transparent.  (Handing
pyqtgraph the float mosaic made it locate every NaN on each of the 30 updates: 28 ms
apiece for SmolLM2 at T = 256, the GUI's longest stall while the grid filled.)
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QFont, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QWidget

from ..core.attention_results import LayerOverview
from .heatmap import TICK_FONT_PT
from .plot_export import export_plot

LOG_FLOOR = 1e-4


class HeadGrid(pg.PlotWidget):
    """Thumbnails of every head; `sig_head_clicked(layer, head)`."""

    sig_head_clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.item = self.getPlotItem()
        self.item.invertY(True)
        self.item.setAspectLocked(True)
        font = QFont("DejaVu Sans", TICK_FONT_PT)
        for side in ("left", "bottom", "top", "right"):
            self.item.getAxis(side).setStyle(tickFont=font)
            self.item.getAxis(side).label.setFont(QFont("DejaVu Sans", TICK_FONT_PT + 1))
        self.image = pg.ImageItem(axisOrder="row-major")
        self.item.addItem(self.image)
        self.colormap = pg.colormap.get("viridis")
        self._lut = self.colormap.getLookupTable(nPts=256, alpha=True)
        self.rgba = np.zeros((1, 1, 4), np.uint8)
        self.selection = QGraphicsRectItem()
        pen = QPen(Qt.GlobalColor.red)
        pen.setCosmetic(True)
        pen.setWidth(3)
        self.selection.setPen(pen)
        self.selection.setZValue(10)
        self.item.addItem(self.selection)
        self.layers = self.heads = self.kv_heads = 0
        self.layers_across = True
        self.cell = 1
        self.gap = 1
        self.group_gap = 0
        self.normalise = True
        self.log_scale = False
        self.overviews: dict[int, LayerOverview] = {}
        self.mosaic = np.zeros((0, 0), np.float32)
        self.scene().sigMouseClicked.connect(self._on_click)
        self.scene().sigMouseMoved.connect(self._on_hover)

    # -- geometry ----------------------------------------------------------------------------
    def reset(self, layers: int, heads: int, kv_heads: int, tokens: int, size: int) -> None:
        """Empty grid for a new trace; `size` is the thumbnail resolution asked of the worker.

        The longer of layers/heads runs along x (docks are wider than tall), so SmolLM2's
        30 layers x 9 heads fill a landscape dock instead of a thin column.
        """
        self.layers, self.heads, self.kv_heads = layers, heads, max(1, kv_heads)
        self.layers_across = layers > heads
        self.cell = math.ceil(tokens / math.ceil(tokens / size)) if tokens else 1
        self.gap = max(1, round(self.cell / 6))
        self.group_gap = 2 * self.gap if self.kv_heads < self.heads else 0
        self.overviews = {}
        layer_extent = layers * (self.cell + self.gap) - self.gap
        head_extent = self.head_offset(heads - 1) + self.cell
        shape = (head_extent, layer_extent) if self.layers_across else (layer_extent, head_extent)
        self.mosaic = np.full((max(1, shape[0]), max(1, shape[1])), np.nan, np.float32)
        self.rgba = np.zeros((*self.mosaic.shape, 4), np.uint8)
        self._axes()
        self._paint()
        self.item.getViewBox().setRange(xRange=(0, self.mosaic.shape[1]), yRange=(0, self.mosaic.shape[0]), padding=0.02)

    def group_size(self) -> int:
        return max(1, self.heads // self.kv_heads)

    def head_offset(self, head: int) -> int:
        return head * (self.cell + self.gap) + (head // self.group_size()) * self.group_gap

    def layer_offset(self, layer: int) -> int:
        return layer * (self.cell + self.gap)

    def origin(self, layer: int, head: int) -> tuple[int, int]:
        """(x, y) of a thumbnail's top-left corner in mosaic pixels."""
        if self.layers_across:
            return self.layer_offset(layer), self.head_offset(head)
        return self.head_offset(head), self.layer_offset(layer)

    def head_at(self, x: float, y: float) -> tuple[int, int] | None:
        along_layers, along_heads = (x, y) if self.layers_across else (y, x)
        layer = int(along_layers // (self.cell + self.gap))
        if along_layers < 0 or not 0 <= layer < self.layers or along_layers - self.layer_offset(layer) >= self.cell:
            return None
        for head in range(self.heads):
            if self.head_offset(head) <= along_heads < self.head_offset(head) + self.cell:
                return layer, head
        return None

    def _axes(self) -> None:
        half = self.cell / 2
        vb = self.item.getViewBox()
        layer_side, head_side = ("bottom", "left") if self.layers_across else ("left", "bottom")
        group_side = "right" if self.layers_across else "top"
        rect = vb.sceneBoundingRect()
        px = (rect.width() if self.layers_across else rect.height()) / max(1, self.layers)
        step = max(1, math.ceil((30 if self.layers_across else 18) / max(1.0, px)))
        ticks = [(self.layer_offset(layer) + half, f"L{layer}") for layer in range(self.layers)]
        self.item.getAxis(layer_side).setTicks([ticks[::step]])
        self.item.setLabel(layer_side, "layer")
        self.item.getAxis(head_side).setTicks([[(self.head_offset(h) + half, f"H{h}") for h in range(self.heads)]])
        self.item.setLabel(head_side, "query head")
        for side in ("top", "right"):
            self.item.showAxis(side, side == group_side and self.kv_heads < self.heads)
        if self.kv_heads < self.heads:
            g = self.group_size()
            groups = [((self.head_offset(k * g) + self.head_offset(k * g + g - 1) + self.cell) / 2, f"KV{k}")
                      for k in range(self.kv_heads)]
            self.item.getAxis(group_side).setTicks([groups])
            self.item.getAxis(group_side).setStyle(tickFont=QFont("DejaVu Sans", TICK_FONT_PT))
            self.item.setLabel(group_side, "shared key/value head")

    # -- data --------------------------------------------------------------------------------
    def set_layer(self, overview: LayerOverview) -> None:
        self._fill(overview)
        self._paint()

    def _fill(self, overview: LayerOverview) -> None:
        """Write one layer's thumbnails into the mosaic and colour its strip (no paint)."""
        self.overviews[overview.layer] = overview
        for head, thumb in enumerate(overview.thumbs[: self.heads]):
            t = thumb.astype(np.float32)
            if self.normalise:
                top = float(np.nanmax(t)) if np.isfinite(t).any() else 0.0
                t = t / top if top > 0 else t
            if self.log_scale:
                t = np.log10(np.maximum(t, LOG_FLOOR))
            x, y = self.origin(overview.layer, head)
            self.mosaic[y:y + t.shape[0], x:x + t.shape[1]] = t
        self._recolour(overview.layer)

    def set_options(self, normalise: bool, log_scale: bool, colormap: str) -> None:
        self.normalise, self.log_scale = normalise, log_scale
        self.colormap = pg.colormap.get(colormap)
        self._lut = self.colormap.getLookupTable(nPts=256, alpha=True)
        overviews, self.overviews = self.overviews, {}
        self.mosaic[:] = np.nan
        self.rgba[:] = 0
        for ov in overviews.values():
            self._fill(ov)
        self._paint()

    def levels(self) -> tuple[float, float]:
        return (math.log10(LOG_FLOOR), 0.0) if self.log_scale else (0.0, 1.0)

    def _recolour(self, layer: int) -> None:
        """Colour one layer's strip of the mosaic into `rgba` (NaN: transparent)."""
        start, stop = self.layer_offset(layer), self.layer_offset(layer) + self.cell
        strip = (slice(None), slice(start, stop)) if self.layers_across else (slice(start, stop), slice(None))
        values = self.mosaic[strip]
        lo, hi = self.levels()
        finite = np.isfinite(values)
        # pyqtgraph's own float mapping (as makeARGB): scale by 256 / (hi - lo), clip to 0..255
        index = np.clip((np.where(finite, values, lo) - lo) * (256 / (hi - lo)), 0, 255)
        colours = self._lut[index.astype(np.uint8)]
        colours[..., 3] *= finite
        self.rgba[strip] = colours

    def _paint(self) -> None:
        self.image.setImage(self.rgba, autoLevels=False, levels=None)
        self.image.setRect(0, 0, self.mosaic.shape[1], self.mosaic.shape[0])

    def select(self, layer: int, head: int) -> None:
        if 0 <= layer < self.layers and 0 <= head < self.heads:
            x, y = self.origin(layer, head)
            self.selection.setRect(QRectF(x - 0.5, y - 0.5, self.cell + 1, self.cell + 1))
            self.selection.setVisible(True)
        else:
            self.selection.setVisible(False)

    # -- interaction -------------------------------------------------------------------------
    def _view_pos(self, scene_pos):
        if not self.item.getViewBox().sceneBoundingRect().contains(scene_pos):
            return None
        p = self.item.getViewBox().mapSceneToView(scene_pos)
        return self.head_at(p.x(), p.y())

    def describe(self, layer: int, head: int) -> str:
        kv = f" (KV head {head // self.group_size()})" if self.kv_heads < self.heads else ""
        ov = self.overviews.get(layer)
        if ov is None:
            return f"layer {layer}, head {head}{kv}: computing…"
        return (f"layer {layer}, head {head}{kv}: entropy {ov.entropy[head]:.2f} bits, mean distance "
                f"{ov.distance[head]:.1f} tokens, {ov.first[head] * 100:.0f}% on the first token")

    def _on_hover(self, pos) -> None:
        hit = self._view_pos(pos)
        self.setToolTip(self.describe(*hit) + " — click to open" if hit else "")

    def _on_click(self, event) -> None:
        hit = self._view_pos(event.scenePos())
        if hit is not None and event.button() == Qt.MouseButton.LeftButton:
            self.sig_head_clicked.emit(*hit)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if getattr(self, "layers", 0):  # pyqtgraph resizes once inside its own __init__
            self._axes()

    def export(self, path: str) -> None:
        export_plot(self.item, path)
