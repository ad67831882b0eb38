"""A labelled matrix plot (pyqtgraph) shared by the views that draw token x token maps.

Row-major float32 image with inverted y (row 0 at the top), explicit levels, a colour bar
with a perceptually uniform colour-blind-safe map, token labels on both axes thinned to
what fits at the current zoom, and a hover read-out 'row -> column: value'.

Long inputs: a matrix may be block-reduced (`block` tokens per cell); the plot's
coordinates stay in shown tokens ("units"), so labels, zoom and hover refer to tokens,
and `set_detail` lays a finer (e.g. exact) matrix of a zoomed region over the coarse one.
NaN and +inf cells are drawn in red, -inf (masked) cells in light grey.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QLabel, QToolTip, QVBoxLayout, QWidget

from .plot_export import export_plot, write_csv

if TYPE_CHECKING:  # pandas is imported when a table or CSV is made, not at start-up
    import pandas as pd

pg.setConfigOptions(imageAxisOrder="row-major", background="w", foreground="k", antialias=True)

LABEL_PX = 17  # vertical pixels a row label needs
CHAR_PX = 8  # approximate width of one label character
TICK_FONT_PT = 10
MAX_LABEL_CHARS = 14
NAN_RGBA = (220, 20, 60, 255)  # crimson: outside every map we use, so a broken value stands out
MASKED_RGBA = (205, 205, 205, 255)  # light grey: -inf, a masked score


@dataclass
class _Layer:
    """One drawn matrix: the values (for read-out and export) and where it sits, in units."""

    matrix: np.ndarray
    row0: int
    col0: int
    block: int
    image: pg.ImageItem
    overlay: pg.ImageItem

    def cell(self, ur: float, uc: float) -> tuple[int, int] | None:
        r, c = int(math.floor((ur - self.row0) / self.block)), int(math.floor((uc - self.col0) / self.block))
        if 0 <= r < self.matrix.shape[0] and 0 <= c < self.matrix.shape[1]:
            return r, c
        return None


def _nonfinite_rgba(m: np.ndarray) -> np.ndarray | None:
    """An RGBA overlay marking NaN/+inf (red) and -inf (grey) cells; None when all are finite."""
    bad = ~np.isfinite(m)
    if not bad.any():
        return None
    rgba = np.zeros(m.shape + (4,), dtype=np.uint8)
    rgba[bad & np.isneginf(m)] = MASKED_RGBA
    rgba[bad & ~np.isneginf(m)] = NAN_RGBA
    return rgba


def format_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "−∞ (masked)" if v < 0 else "+∞"
    return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3e}"


def thin_ticks(labels: Sequence[str], lo: float, hi: float, pixels: float,
               per_label_px: Callable[[int], float]) -> list[tuple[float, str]]:
    """Ticks at unit centres for the labels visible in [lo, hi], every k-th so they fit in `pixels`.

    Labels longer than MAX_LABEL_CHARS are cut with '…'.
    """
    n = len(labels)
    if n == 0 or pixels <= 0:
        return []
    first, last = max(0, int(math.floor(lo))), min(n - 1, int(math.ceil(hi)))
    visible = max(1, last - first + 1)
    longest = max((len(labels[i]) for i in range(first, last + 1)), default=1) if visible <= 256 else MAX_LABEL_CHARS
    step = max(1, math.ceil(visible * per_label_px(longest) / pixels))
    start = first - first % step
    cut = lambda s: s if len(s) <= MAX_LABEL_CHARS else s[:MAX_LABEL_CHARS - 1] + "…"  # noqa: E731
    return [(i + 0.5, cut(labels[i])) for i in range(start, last + 1, step) if 0 <= i < n]


class HeatmapPlot(QWidget):
    """A matrix with labelled axes, colour bar and hover read-out; emits `sig_clicked(row, col)`.

    Row/column indices in signals and read-outs are shown-token indices (the label index);
    with block 1 these are the matrix's own row and column.
    """

    sig_clicked = Signal(int, int)
    sig_drawn = Signal()
    sig_range_changed = Signal(object)
    """(row0, row1, col0, col1) of the visible area in shown tokens, after zoom or pan."""

    def __init__(self, parent: QWidget | None = None, colormap: str = "viridis", bar_label: str = "") -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.item = self.plot.getPlotItem()
        self.item.invertY(True)
        self.item.setAspectLocked(False)
        self.item.showGrid(False, False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.detail_image = pg.ImageItem(axisOrder="row-major")
        self.item.addItem(self.image)
        overlays = (pg.ImageItem(axisOrder="row-major"), pg.ImageItem(axisOrder="row-major"))
        self.item.addItem(overlays[0])
        self.item.addItem(self.detail_image)
        self.item.addItem(overlays[1])
        self.detail_image.setZValue(5)
        overlays[1].setZValue(6)
        self.bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=pg.colormap.get(colormap), interactive=False, width=18)
        self.bar.setImageItem([self.image, self.detail_image], insert_in=self.item)
        # The title spans the axis and the colour bar as well as the image: a small panel's
        # title ("weights = softmax(scores)") is wider than its image in presentation's fonts.
        grid = self.item.layout
        grid.removeItem(self.item.titleLabel)
        grid.addItem(self.item.titleLabel, 0, 0, 1, grid.columnCount())
        font = QFont("DejaVu Sans", TICK_FONT_PT)
        for side in ("left", "bottom"):
            axis = self.item.getAxis(side)
            axis.setStyle(tickFont=font, autoExpandTextSpace=True)
            axis.label.setFont(QFont("DejaVu Sans", TICK_FONT_PT + 1))
        self.bar.axis.setStyle(tickFont=font)
        self.bar.axis.setWidth(None)  # room for the label (pyqtgraph fixes it at 45 px)
        self.bar.axis.enableAutoSIPrefix(False)
        self.bar.axis.label.setFont(QFont("DejaVu Sans", TICK_FONT_PT + 1))
        self.readout = QLabel(" ")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.readout)
        self.matrix = np.zeros((0, 0), np.float32)
        self.row_labels: list[str] = []
        self.col_labels: list[str] = []
        self.row_index: np.ndarray = np.zeros(0, int)
        self.col_index: np.ndarray = np.zeros(0, int)
        self.block = 1
        self.units = (0, 0)  # shown tokens (rows, columns)
        self.levels: tuple[float, float] = (0.0, 1.0)
        self.log_scale = False
        self.bar_text = bar_label
        self.reduce_name = "max"
        self._ticks_for: tuple | None = None  # (view range and size, column labels, row labels) of the set ticks
        self._base = _Layer(self.matrix, 0, 0, 1, self.image, overlays[0])
        self._detail: _Layer | None = None
        self._detail_slot = (self.detail_image, overlays[1])
        self.value_format: Callable[[float], str] = format_value
        self.plot.scene().sigMouseMoved.connect(self._on_hover)
        self.plot.scene().sigMouseClicked.connect(self._on_click)
        self.item.getViewBox().sigRangeChanged.connect(self._on_range)

    # -- data ------------------------------------------------------------------------------
    def set_matrix(
        self,
        matrix: np.ndarray,
        row_labels: Sequence[str],
        col_labels: Sequence[str],
        levels: tuple[float, float] | None = None,
        row_index: np.ndarray | None = None,
        col_index: np.ndarray | None = None,
        bar_label: str | None = None,
        *,
        block: int = 1,
        keep_view: bool = False,
    ) -> None:
        """Show `matrix`; labels (and row_index/col_index, the token positions) name the shown tokens.

        With `block` > 1 each cell covers block x block tokens and the labels are per token
        (len(row_labels) == tokens, matrix rows == ceil(tokens / block)).  `keep_view` keeps
        the current zoom when the new matrix has the same extent.
        """
        m = np.ascontiguousarray(matrix, dtype=np.float32)
        if levels is None:
            finite = np.isfinite(m)
            vals = m if finite.all() else m[finite]
            lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
            levels = (lo, hi if hi > lo else lo + 1e-6)
        rows_u = len(row_labels) or m.shape[0] * max(1, int(block))
        cols_u = len(col_labels) or m.shape[1] * max(1, int(block))
        same_extent = (rows_u, cols_u) == self.units
        self.matrix, self.block, self.levels = m, max(1, int(block)), (float(levels[0]), float(levels[1]))
        self.row_labels, self.col_labels = list(row_labels), list(col_labels)
        self.units = (rows_u, cols_u)
        self.row_index = np.arange(rows_u) if row_index is None else np.asarray(row_index)
        self.col_index = np.arange(cols_u) if col_index is None else np.asarray(col_index)
        if bar_label is not None:
            self.bar_text = bar_label
        self._base.matrix, self._base.block = m, self.block
        self._clear_detail_layer()
        self._paint(self._base)
        self._update_bar()
        vb = self.item.getViewBox()
        vb.blockSignals(True)
        if not same_extent:
            self.item.setLimits(xMin=-0.5, xMax=cols_u + 0.5, yMin=-0.5, yMax=rows_u + 0.5)
        if not (keep_view and same_extent):
            vb.setRange(xRange=(0, cols_u), yRange=(0, rows_u), padding=0.01)
        vb.blockSignals(False)
        self._update_ticks()
        self.sig_drawn.emit()

    def set_detail(self, matrix: np.ndarray, row0: int, col0: int, block: int = 1) -> None:
        """Lay a finer matrix over the region starting at shown token (row0, col0)."""
        image, overlay = self._detail_slot
        self._detail = _Layer(np.ascontiguousarray(matrix, dtype=np.float32), int(row0), int(col0),
                              max(1, int(block)), image, overlay)
        self._paint(self._detail)
        self.sig_drawn.emit()

    def clear_detail(self) -> None:
        self._clear_detail_layer()

    @property
    def detail(self) -> tuple[np.ndarray, int, int, int] | None:
        """(matrix, row0, col0, block) of the zoomed overlay, if one is shown."""
        d = self._detail
        return None if d is None else (d.matrix, d.row0, d.col0, d.block)

    def _clear_detail_layer(self) -> None:
        self._detail = None
        for item in self._detail_slot:
            item.clear()
            item.setVisible(False)

    def clear(self) -> None:
        self.set_matrix(np.zeros((1, 1), np.float32), [""], [""], levels=(0.0, 1.0))

    def set_colormap(self, name: str) -> None:
        self.bar.setColorMap(pg.colormap.get(name))

    def set_log_scale(self, on: bool) -> None:
        """Colour by log10 of the value (small weights become visible); read-outs stay linear."""
        if on == self.log_scale:
            return
        self.log_scale = on
        for layer in (self._base, self._detail):
            if layer is not None and layer.matrix.size:
                self._paint(layer)
        self._update_bar()

    def _display_levels(self) -> tuple[float, float]:
        lo, hi = self.levels
        if not self.log_scale:
            return lo, hi
        hi = max(hi, 1e-12)
        floor = max(lo, hi * 1e-6, 1e-12)
        return math.log10(floor), math.log10(hi) if hi > floor else math.log10(floor) + 1e-6

    def _shown(self, m: np.ndarray) -> np.ndarray:
        if not self.log_scale:
            return m
        lo, _ = self._display_levels()
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.log10(np.maximum(m, 10 ** lo))
        return np.where(np.isfinite(m), out, m).astype(np.float32)

    def _paint(self, layer: _Layer) -> None:
        m = layer.matrix
        levels = self._display_levels()
        rgba = _nonfinite_rgba(m)
        shown = self._shown(m)
        if rgba is not None:
            shown = np.where(np.isfinite(shown), shown, levels[0]).astype(np.float32)
        rect = (layer.col0, layer.row0, m.shape[1] * layer.block, m.shape[0] * layer.block)
        layer.image.setImage(shown, autoLevels=False, levels=levels)
        layer.image.setRect(*rect)
        layer.image.setVisible(True)
        if rgba is None:
            layer.overlay.clear()
            layer.overlay.setVisible(False)
        else:
            layer.overlay.setImage(rgba, autoLevels=False, levels=(0, 255))
            layer.overlay.setRect(*rect)
            layer.overlay.setVisible(True)

    def _update_bar(self) -> None:
        self.bar.setLevels(self._display_levels())
        self.bar.axis.setLabel(f"log10 {self.bar_text}" if self.log_scale and self.bar_text else self.bar_text)

    @property
    def nonfinite_count(self) -> int:
        return int((~np.isfinite(self.matrix)).sum())

    # -- axes ------------------------------------------------------------------------------
    def _update_ticks(self) -> None:
        """Token labels for the visible range; unchanged ticks are not set again, since that
        makes both axes regenerate their text on the next paint (most of a head switch's
        GUI time at T = 1024, where only the image changes)."""
        vb = self.item.getViewBox()
        (x0, x1), (y0, y1) = vb.viewRange()
        rect = vb.sceneBoundingRect()
        key = (x0, x1, y0, y1, rect.width(), rect.height())
        if self._ticks_for is not None and self._ticks_for[0] == key and self._ticks_for[1] == self.col_labels \
                and self._ticks_for[2] == self.row_labels:
            return
        self._ticks_for = (key, self.col_labels, self.row_labels)
        xt = thin_ticks(self.col_labels, x0, x1, rect.width(), lambda n: CHAR_PX * min(n, MAX_LABEL_CHARS) + 12)
        yt = thin_ticks(self.row_labels, y0, y1, rect.height(), lambda n: LABEL_PX)
        self.item.getAxis("bottom").setTicks([xt])
        self.item.getAxis("left").setTicks([yt])

    def _on_range(self, *_: object) -> None:
        self._update_ticks()
        self.sig_range_changed.emit(self.visible_region())

    def visible_region(self) -> tuple[int, int, int, int]:
        """(row0, row1, col0, col1) in shown tokens."""
        (x0, x1), (y0, y1) = self.item.getViewBox().viewRange()
        rows, cols = self.units
        clip = lambda v, n: int(min(max(0, v), n))  # noqa: E731
        return clip(math.floor(y0), rows), clip(math.ceil(y1), rows), clip(math.floor(x0), cols), clip(math.ceil(x1), cols)

    def reset_view(self) -> None:
        self.item.getViewBox().setRange(xRange=(0, self.units[1]), yRange=(0, self.units[0]), padding=0.01)

    def view_pixels(self) -> tuple[int, int]:
        """The plot area in device pixels (height, width): the resolution worth computing."""
        rect = self.item.getViewBox().sceneBoundingRect()
        ratio = self.devicePixelRatioF()
        return int(rect.height() * ratio), int(rect.width() * ratio)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._update_ticks()

    # -- interaction -------------------------------------------------------------------------
    def unit_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        """The shown (row, column) token under a scene position."""
        if not self.item.sceneBoundingRect().contains(scene_pos) or self.matrix.size == 0:
            return None
        p = self.item.getViewBox().mapSceneToView(scene_pos)
        r, c = int(math.floor(p.y())), int(math.floor(p.x()))
        if 0 <= r < self.units[0] and 0 <= c < self.units[1]:
            return r, c
        return None

    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        """The base matrix cell under a scene position."""
        unit = self.unit_at(scene_pos)
        return None if unit is None else self._base.cell(*unit)

    def value_at(self, row: int, col: int) -> tuple[float, int]:
        """The value drawn at shown token (row, col), and the block size it comes from."""
        for layer in (self._detail, self._base):
            if layer is None:
                continue
            cell = layer.cell(row + 0.5, col + 0.5)
            if cell is not None:
                return float(layer.matrix[cell]), layer.block
        return float("nan"), self.block

    def _span(self, labels: list[str], index: np.ndarray, unit: int, block: int, start: int) -> str:
        if block == 1:
            lab = labels[unit] if unit < len(labels) else str(unit)
            return f"{lab} [{int(index[unit])}]" if unit < len(index) else lab
        a = start + (unit - start) // block * block
        b = min(len(labels), a + block) - 1
        return f"{labels[a]}…{labels[b]} [{int(index[a])}–{int(index[b])}]"

    def describe(self, r: int, c: int) -> str:
        """'query [pos] -> key [pos]: value' for shown token (r, c); block ranges when reduced."""
        value, block = self.value_at(r, c)
        layer = self._detail if self._detail is not None and self._detail.cell(r + 0.5, c + 0.5) else self._base
        row = self._span(self.row_labels, self.row_index, r, block, layer.row0)
        col = self._span(self.col_labels, self.col_index, c, block, layer.col0)
        how = f" (block {self.reduce_name} of {block}×{block})" if block > 1 else ""
        return f"{row} -> {col}: {self.value_format(value)}{how}"

    def _on_hover(self, pos: QPointF) -> None:
        unit = self.unit_at(pos)
        if unit is None:
            return
        text = self.describe(*unit)
        self.readout.setText(text)
        view = self.plot.mapFromScene(pos)
        QToolTip.showText(self.plot.mapToGlobal(view), text, self.plot)

    def _on_click(self, event) -> None:
        unit = self.unit_at(event.scenePos())
        if unit is not None and event.button() == Qt.MouseButton.LeftButton:
            self.sig_clicked.emit(*unit)

    # -- export ------------------------------------------------------------------------------
    def frame(self, detail: bool = False) -> pd.DataFrame:
        """The shown matrix (or the zoomed detail) as a DataFrame labelled 'position:token' (or ranges)."""
        import pandas as pd
        layer = self._detail if detail and self._detail is not None else self._base

        def names(labels: list[str], index: np.ndarray, start: int, count: int, block: int) -> list[str]:
            out = []
            for i in range(count):
                a = start + i * block
                b = min(len(labels), a + block) - 1
                out.append(f"{int(index[a])}:{labels[a]}" if block == 1
                           else f"{int(index[a])}-{int(index[b])}:{labels[a]}…{labels[b]}")
            return out

        rows, cols = layer.matrix.shape
        return pd.DataFrame(layer.matrix,
                            index=pd.Index(names(self.row_labels, self.row_index, layer.row0, rows, layer.block), name="query"),
                            columns=names(self.col_labels, self.col_index, layer.col0, cols, layer.block))

    def export(self, path: str, detail: bool = False) -> None:
        """PNG or SVG of the plot, or CSV (pandas, token labels) of the matrix, by extension."""
        if path.lower().endswith(".csv"):
            write_csv(self.frame(detail), path, float_format="%.6g")
        else:
            export_plot(self.item, path)
