"""The projector style: every text large enough for the back row, thick lines, a light theme.

`PresentationStyle.apply(root)` walks a widget tree once: Qt widgets get their fonts from an
application style sheet (which also reaches widgets built later), widgets with a style sheet
of their own get their font sizes raised in it, and every pyqtgraph scene gets larger axis,
tick, title, legend, colour-bar and text-item fonts, thicker pens and the cividis map.
Every change is recorded with a way back, so `restore()` puts the desktop look back exactly.
`apply` may be called again (after a view redraws) and only styles what is new.
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import pyqtgraph as pg
from PySide6.QtCore import QObject
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPalette, QPen
from PySide6.QtWidgets import QApplication, QGraphicsScene, QGraphicsTextItem, QTableView, QWidget

PenOrBrush = TypeVar("PenOrBrush", QPen, QBrush)

#: Colour-blind-safe categorical palette (Okabe & Ito, 2008), for curves drawn in presentation.
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
#: The order in which other colours of a plot are replaced (no yellow: too faint on white).
SUBSTITUTES = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000")
PRESENTATION_MAP = "cividis"
#: The height pyqtgraph fixes for a plot's title row (PlotItem.setTitle).
PLOT_TITLE_ROW_PX = 30
_FONT_SIZE = re.compile(r"font-size\s*:\s*([\d.]+)\s*(pt|px)", re.IGNORECASE)


def text_px_for(height: int) -> int:
    """The smallest text size for a window `height` px tall: 24 px at 720, 32 at 1080 (about a
    thirtieth of the screen's height, what the back row of a lecture room still reads)."""
    return max(24, math.ceil(height * 32 / 1080))


def pt_to_px(points: float) -> float:
    """Points to pixels at the screen's logical DPI."""
    screen = QApplication.primaryScreen()
    dpi = screen.logicalDotsPerInchY() if screen is not None else 96.0
    return points * dpi / 72.0


def _raise_sizes(sheet: str, px: int) -> str:
    """`sheet` with every font-size below `px` pixels raised to it (larger ones kept, in px)."""
    def repl(m: re.Match[str]) -> str:
        size = float(m.group(1))
        size_px = pt_to_px(size) if m.group(2).lower() == "pt" else size
        return f"font-size: {max(px, round(size_px))}px"
    return _FONT_SIZE.sub(repl, sheet)


def _font(px: int, bold: bool = False) -> QFont:
    font = QFont("DejaVu Sans")
    font.setPixelSize(px)
    font.setBold(bold)
    return font


def _thinned(axis: pg.AxisItem) -> Callable:
    """`axis.generateDrawSpecs` keeping only tick labels that do not overlap one already kept
    (large fonts on token axes: every second or third label, the legible ones)."""
    original = type(axis).generateDrawSpecs.__get__(axis)

    def specs(p: QPainter) -> tuple | None:
        out = original(p)
        if out is None:
            return out
        axis_spec, tick_specs, text_specs = out
        kept: list = []
        for spec in text_specs:
            rect = spec[0].adjusted(-2, -1, 2, 1)
            if not any(rect.intersects(other[0]) for other in kept):
                kept.append(spec)
        return axis_spec, tick_specs, kept
    return specs


class PresentationStyle(QObject):
    """Applies and undoes the projector style for one window."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.px = 24
        self.active = False
        self._undo: list[Callable[[], None]] = []
        self._seen: weakref.WeakSet = weakref.WeakSet()
        self._seen_items: set[int] = set()
        self._palettes: dict[int, dict[str, str]] = {}  # per scene: original colour -> Okabe-Ito

    # -- application-wide ----------------------------------------------------------------------
    def apply(self, root: QWidget, px: int) -> None:
        """Style `root` and everything under it for text of at least `px` pixels."""
        app = QApplication.instance()
        if not self.active or px != self.px:
            if self.active:
                self.restore()
            self.px = px
            self.active = True
            old_sheet, old_palette = app.styleSheet(), app.palette()
            app.setPalette(self.light_palette())
            app.setStyleSheet(old_sheet + self.app_sheet(px))
            self._undo.append(lambda: (app.setStyleSheet(old_sheet), app.setPalette(old_palette)))
        for widget in [root, *root.findChildren(QWidget)]:
            self._style_widget(widget)

    def app_sheet(self, px: int) -> str:
        """Every widget's font at `px`; scroll bars and tabs sized to match."""
        return (f"\nQWidget {{ font-size: {px}px; }}"
                f"\nQTabBar::tab {{ padding: 6px 14px; }}"
                f"\nQScrollBar:vertical {{ width: {px // 2 + 6}px; }}"
                f"\nQScrollBar:horizontal {{ height: {px // 2 + 6}px; }}"
                f"\nQCheckBox::indicator, QRadioButton::indicator {{ width: {px * 3 // 4}px; height: {px * 3 // 4}px; }}"
                f"\nQToolTip {{ font-size: {px}px; }}")

    @staticmethod
    def light_palette() -> QPalette:
        """Black on white, a dark blue for selections: the most contrast a projector keeps."""
        p = QPalette()
        for role, colour in ((QPalette.ColorRole.Window, "#FFFFFF"), (QPalette.ColorRole.Base, "#FFFFFF"),
                             (QPalette.ColorRole.AlternateBase, "#F2F2F2"), (QPalette.ColorRole.Text, "#000000"),
                             (QPalette.ColorRole.WindowText, "#000000"), (QPalette.ColorRole.ButtonText, "#000000"),
                             (QPalette.ColorRole.Button, "#EDEDED"), (QPalette.ColorRole.Highlight, "#0B3D91"),
                             (QPalette.ColorRole.HighlightedText, "#FFFFFF"),
                             (QPalette.ColorRole.PlaceholderText, "#333333")):
            p.setColor(role, QColor(colour))
        return p

    def restore(self) -> None:
        """Undo everything `apply` did, newest first."""
        for undo in reversed(self._undo):
            try:
                undo()
            except RuntimeError:  # the widget or item was deleted meanwhile
                pass
        self._undo.clear()
        self._seen = weakref.WeakSet()
        self._seen_items.clear()
        self._palettes.clear()
        self.active = False

    # -- widgets --------------------------------------------------------------------------------
    def _style_widget(self, widget: QWidget) -> None:
        if widget in self._seen:
            if isinstance(widget, pg.GraphicsView):
                self._style_scene(widget)  # items come and go with every redraw
            return
        self._seen.add(widget)
        sheet = widget.styleSheet()
        if sheet and _FONT_SIZE.search(sheet):
            widget.setStyleSheet(_raise_sizes(sheet, self.px))
            self._undo.append(lambda w=widget, s=sheet: w.setStyleSheet(s))
        if isinstance(widget, QTableView):
            # Rows keep the height the desktop font chose unless told: large text would be cut.
            header = widget.verticalHeader()
            old_size = header.defaultSectionSize()
            header.setDefaultSectionSize(max(old_size, round(self.px * 1.45)))
            self._undo.append(lambda h=header, n=old_size: h.setDefaultSectionSize(n))
        if isinstance(widget, pg.GraphicsView):
            background = widget.backgroundBrush()
            widget.setBackground("w")
            self._undo.append(lambda w=widget, b=background: w.setBackgroundBrush(b))
            self._style_scene(widget)

    # -- pyqtgraph ------------------------------------------------------------------------------
    def _style_scene(self, view: pg.GraphicsView) -> None:
        scene = view.scene()
        if scene is None:
            return
        for item in scene.items():
            key = id(item)
            if key in self._seen_items:
                continue
            self._seen_items.add(key)
            if isinstance(item, pg.AxisItem):
                self._style_axis(item)
            elif isinstance(item, pg.PlotDataItem):
                self._style_curve(item)
            elif isinstance(item, pg.BarGraphItem):
                self._style_bars(item)
            elif isinstance(item, pg.ScatterPlotItem) and not isinstance(item.parentItem(), pg.PlotDataItem):
                self._style_scatter(item)
            elif isinstance(item, pg.TextItem):
                self._style_text_colour(item)
            elif isinstance(item, pg.ImageItem):
                self._style_image(item)
            elif isinstance(item, pg.ColorBarItem):
                self._style_colorbar(item)
            elif isinstance(item, QGraphicsTextItem):
                self._style_text(item)

    def _style_axis(self, axis: pg.AxisItem) -> None:
        old_style = {k: axis.style.get(k) for k in ("tickFont", "tickTextOffset", "autoExpandTextSpace")}
        old_label = dict(axis.labelStyle)
        old_pen, old_text_pen = axis.pen(), axis.textPen()
        old_width, old_height = axis.fixedWidth, axis.fixedHeight
        axis.setStyle(tickFont=_font(self.px), tickTextOffset=8, autoExpandTextSpace=True)
        axis.labelStyle = {**axis.labelStyle, "font-size": f"{self.px}px", "color": "#000"}
        axis.setPen(pg.mkPen("#000", width=2))
        axis.setTextPen(pg.mkPen("#000"))
        if axis.orientation in ("left", "right"):
            axis.setWidth(None)
        else:
            axis.setHeight(None)
        axis._updateLabel()  # the only way to re-render the label in its new style
        axis.generateDrawSpecs = _thinned(axis)  # token labels at 24 px would overlap: drop what collides

        def undo() -> None:
            axis.__dict__.pop("generateDrawSpecs", None)
            axis.style.update(old_style)
            axis.setStyle()  # re-measures and repaints with the restored entries
            axis.labelStyle = old_label
            axis.setPen(old_pen)
            axis.setTextPen(old_text_pen)
            if axis.orientation in ("left", "right"):  # setHeight on a vertical axis would fix its height
                axis.setWidth(old_width)
            else:
                axis.setHeight(old_height)
            axis._updateLabel()
        self._undo.append(undo)

    # -- the categorical palette ----------------------------------------------------------------
    def _palette(self, scene: QGraphicsScene) -> dict[str, str]:
        """This scene's colour substitutions; Okabe-Ito colours it already uses are not reused."""
        key = id(scene)
        if key not in self._palettes:
            self._palettes[key] = {}
            self._palettes[key].update({c: c for c in OKABE_ITO if self._scene_uses(scene, c)})
        return self._palettes[key]

    @staticmethod
    def _scene_uses(scene: QGraphicsScene, name: str) -> bool:
        for item in scene.items():
            pen = getattr(item, "opts", {}).get("pen") if isinstance(getattr(item, "opts", None), dict) else None
            if isinstance(pen, (pg.QtGui.QPen,)) and pen.color().name().upper() == name:
                return True
        return False

    def _okabe(self, scene: QGraphicsScene, colour: QColor) -> QColor:
        """`colour` in the colour-blind-safe palette: greys and Okabe-Ito colours stay, any other
        hue gets the palette's next free colour (the same one wherever it recurs in the scene)."""
        if colour.alpha() == 0 or colour.hsvSaturation() < 40:
            return colour
        name = colour.name().upper()
        if name in OKABE_ITO:
            return colour
        palette = self._palette(scene)
        if name not in palette:
            free = [c for c in SUBSTITUTES if c not in palette.values()]
            if not free:
                return colour  # more categories than the palette has colours: keep them apart
            palette[name] = free[0]
        out = QColor(palette[name])
        out.setAlpha(colour.alpha())
        return out

    def _recoloured(self, scene: QGraphicsScene, spec: Any, make: Callable[[Any], PenOrBrush]) -> PenOrBrush | None:
        """A copy of the pen or brush that `spec` describes (`make` is pg.mkPen or pg.mkBrush), in the palette's colour."""
        if spec is None:
            return None
        out = make(spec)
        out.setColor(self._okabe(scene, out.color()))
        return out

    def _recoloured_pen(self, scene: QGraphicsScene, pen: Any) -> QPen | None:
        return self._recoloured(scene, pen, pg.mkPen)

    def _recoloured_brush(self, scene: QGraphicsScene, brush: Any) -> QBrush | None:
        return self._recoloured(scene, brush, pg.mkBrush)

    def _style_curve(self, curve: pg.PlotDataItem) -> None:
        scene = curve.scene()
        opts = curve.opts
        old_symbol = (opts.get("symbolPen"), opts.get("symbolBrush"))
        if opts.get("symbol") is not None:
            if not isinstance(old_symbol[0], (list, tuple)):
                curve.setSymbolPen(self._recoloured_pen(scene, old_symbol[0]))
            if not isinstance(old_symbol[1], (list, tuple)):
                curve.setSymbolBrush(self._recoloured_brush(scene, old_symbol[1]))
            self._undo.append(lambda c=curve, o=old_symbol: (c.setSymbolPen(o[0]), c.setSymbolBrush(o[1])))
        pen = opts.get("pen")
        if pen is None:
            return
        old = pg.mkPen(pen)
        if old.style() == 0:  # Qt.NoPen: a scatter without lines stays without
            return
        thick = self._recoloured_pen(scene, old)
        thick.setWidthF(max(3.0, old.widthF() * 2))
        curve.setPen(thick)
        size = curve.opts.get("symbolSize")
        if curve.opts.get("symbol") is not None and size:
            curve.setSymbolSize(max(size, 12))
        self._undo.append(lambda c=curve, p=old, s=size: (c.setPen(p), s and c.setSymbolSize(s)))

    def _style_bars(self, bars: pg.BarGraphItem) -> None:
        scene, opts = bars.scene(), bars.opts
        old = {k: opts.get(k) for k in ("brush", "brushes")}
        new = {}
        if old["brushes"] is not None:
            new["brushes"] = [self._recoloured_brush(scene, b) for b in old["brushes"]]
        elif old["brush"] is not None:
            new["brush"] = self._recoloured_brush(scene, old["brush"])
        if new:
            bars.setOpts(**new)
            self._undo.append(lambda b=bars, o=old: b.setOpts(**{k: v for k, v in o.items() if v is not None}))

    def _style_scatter(self, scatter: pg.ScatterPlotItem) -> None:
        """A scatter of one colour (its default brush and pen; per-point colours are kept)."""
        scene = scatter.scene()
        old_pen, old_brush = scatter.opts.get("pen"), scatter.opts.get("brush")
        if old_pen is None or old_brush is None:
            return
        scatter.setPen(self._recoloured_pen(scene, old_pen))
        scatter.setBrush(self._recoloured_brush(scene, old_brush))
        self._undo.append(lambda s=scatter, p=old_pen, b=old_brush: (s.setPen(p), s.setBrush(b)))

    def _style_text_colour(self, text: pg.TextItem) -> None:
        """A plot label coloured like its point or curve gets the same palette colour."""
        old = QColor(text.color)
        new = self._okabe(text.scene(), old)
        if new != old:
            text.setColor(new)
            self._undo.append(lambda t=text, c=old: t.setColor(c))

    def _style_image(self, image: pg.ImageItem) -> None:
        lut = image.lut
        if lut is None:
            return  # a colour bar owns this image's map; styled with the bar
        image.setColorMap(pg.colormap.get(PRESENTATION_MAP))
        self._undo.append(lambda i=image, lut=lut: i.setLookupTable(lut))

    def _style_colorbar(self, bar: pg.ColorBarItem) -> None:
        old_map = bar.colorMap() if hasattr(bar, "colorMap") else bar.cmap
        bar.setColorMap(pg.colormap.get(PRESENTATION_MAP))
        self._undo.append(lambda b=bar, m=old_map: b.setColorMap(m))

    def _fit_title_row(self, plot: pg.PlotItem, height: int) -> None:
        """pyqtgraph fixes a plot's title row at 30 px, which cuts a larger title's descenders."""
        if height <= PLOT_TITLE_ROW_PX:
            return
        plot.titleLabel.setMaximumHeight(height)
        plot.layout.setRowFixedHeight(0, height)

        def undo() -> None:
            if plot.titleLabel.isVisible():
                plot.titleLabel.setMaximumHeight(PLOT_TITLE_ROW_PX)
                plot.layout.setRowFixedHeight(0, PLOT_TITLE_ROW_PX)
        self._undo.append(undo)

    def _style_text(self, item: QGraphicsTextItem) -> None:
        """Titles, legend entries, axis labels, TextItems: raise the font and every inline size."""
        old_font = item.font()
        old_html = item.toHtml() if _FONT_SIZE.search(item.toHtml()) else None
        font = QFont(old_font)
        font.setPixelSize(max(self.px, font.pixelSize() if font.pixelSize() > 0 else round(pt_to_px(font.pointSizeF()))))
        item.setFont(font)
        if old_html is not None:
            item.setHtml(_raise_sizes(old_html, self.px))
        parent = item.parentItem()
        old_size = parent.opts.get("size") if isinstance(parent, pg.LabelItem) else None
        if isinstance(parent, pg.LabelItem):
            parent.opts["size"] = f"{self.px}px"  # a later setText keeps it
            parent.updateMin()
            plot = parent.parentItem()
            if isinstance(plot, pg.PlotItem) and parent is plot.titleLabel and parent.isVisible():
                self._fit_title_row(plot, math.ceil(item.boundingRect().height()))

        def undo() -> None:
            item.setFont(old_font)
            if isinstance(parent, pg.LabelItem):  # its current text (a view may have retitled it) at the old size
                if old_size is None:
                    parent.opts.pop("size", None)
                else:
                    parent.opts["size"] = old_size
                parent.setText(parent.text)
            elif old_html is not None:
                item.setHtml(old_html)
        self._undo.append(undo)
