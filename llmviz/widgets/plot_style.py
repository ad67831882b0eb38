"""Shared pyqtgraph styling for plots meant to be read from the back of a lecture room.

Log-scaled data is plotted as log10 values (so scatter points, text labels and lines
all share one coordinate system) on a `CountAxis` that labels decades as 1M, 1B, 1T
instead of 10⁹.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtGui import QFont

pg.setConfigOptions(background="w", foreground="k", antialias=True)

TICK_PT = 11
LABEL_PT = 12
TITLE_PT = 13


def human_count(value: float | None, unit: str = "") -> str:
    """1.75e11 -> '175B', 1e16 -> '1e16'; None/NaN -> '—'."""
    if value is None or not math.isfinite(value):
        return "—"
    if abs(value) >= 1e15:
        return f"{value:.2g}".replace("e+", "e") + unit
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= size:
            scaled = value / size
            return (f"{scaled:.3g}" if scaled < 100 else f"{scaled:.0f}") + suffix + unit
    return f"{value:.3g}{unit}"


class CountAxis(pg.AxisItem):
    """An axis over log10 values that labels whole decades as counts (1M, 1B, 1T) or powers of ten.

    `max_label` hides labels above a value (e.g. the timeline's 'size not disclosed' strip).
    """

    def __init__(self, orientation: str, unit: str = "", powers: bool = False, max_label: float | None = None,
                 **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.unit = unit
        self.powers = powers
        self.max_label = max_label

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:  # noqa: N802 - Qt naming
        """Major ticks on whole decades (every 2nd/3rd when crowded), minor ticks at 2..9 x each decade."""
        lo, hi = math.floor(minVal), math.ceil(maxVal)
        decades = max(1, hi - lo)
        px_per_decade = size / decades if decades else size
        step = 1 if px_per_decade > 45 else (2 if px_per_decade > 22 else 3)
        majors = [float(d) for d in range(lo, hi + 1) if d % step == 0 and minVal <= d <= maxVal]
        minors = []
        if step == 1 and px_per_decade > 90:
            minors = [d + math.log10(k) for d in range(lo, hi + 1) for k in range(2, 10) if minVal <= d + math.log10(k) <= maxVal]
        return [(float(step), majors), (0.0, minors)] if minors else [(float(step), majors)]

    def tickStrings(self, values: list, scale: float, spacing: float) -> list:  # noqa: N802 - Qt naming
        out = []
        for v in values:
            if abs(v - round(v)) > 1e-6 or (self.max_label is not None and 10 ** v > self.max_label * 1.0001):
                out.append("")
            elif self.powers:
                out.append(f"1e{int(round(v))}")
            else:
                out.append(human_count(10.0 ** round(v), self.unit))
        return out


def keep_title_size(item: pg.PlotItem, size: str) -> None:
    """Give `item`'s title a size that later `setTitle(text)` calls keep.

    For plots retitled on every redraw: passing the size to each `setTitle` would put the
    desktop size back over presentation mode's larger one, which styles a title once."""
    item.titleLabel.opts["size"] = size


def style_plot(item: pg.PlotItem, title: str = "", left: str = "", bottom: str = "") -> None:
    """Projector-readable fonts, a light grid and axis labels."""
    font = QFont()
    font.setPointSize(TICK_PT)
    for side in ("left", "bottom"):
        axis = item.getAxis(side)
        axis.setStyle(tickFont=font, autoExpandTextSpace=True)
        axis.setTextPen(pg.mkPen("#222"))
    label_style = {"font-size": f"{LABEL_PT}pt", "color": "#222"}
    if left:
        item.setLabel("left", left, **label_style)
    if bottom:
        item.setLabel("bottom", bottom, **label_style)
    if title:
        item.setTitle(title, size=f"{TITLE_PT}pt", color="#111")
    item.showGrid(x=True, y=True, alpha=0.18)
