"""Measuring what a viewer sees: every visible text's pixel size, and the texts cut off.

Used by tests and bench/classroom.py to hold presentation mode to its promise (no text under
24 px at 1280×720, none under 32 px at 1920×1080, nothing clipped).  Qt widgets are measured by
their font; pyqtgraph scenes by their text items' fonts (inline HTML sizes included) and their
axes' tick fonts.  A text counts as clipped when its widget shows only part of itself (its
parent cuts it) or when a one-line label or button needs more width than it has.  A widget cut
at the top or bottom edge of a scroll area that scrolls down to the rest is not clipped (that is
what a vertical scroll area is for: a column read top to bottom); cut at a left or right edge it
is, scroll bar or not (nobody scrolls sideways to read a line on a projector).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyqtgraph as pg
from PySide6.QtCore import QPoint, QRect, QRectF
from PySide6.QtGui import QFont, QFontInfo, QTextDocument
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractScrollArea,
    QComboBox,
    QGraphicsTextItem,
    QGroupBox,
    QLabel,
    QLineEdit,
    QTabBar,
    QTextEdit,
    QWidget,
)

from .presentation_style import pt_to_px

TEXT_WIDGETS = (QLabel, QAbstractButton, QLineEdit, QComboBox, QAbstractItemView, QTabBar, QTextEdit, QGroupBox)


@dataclass
class TextReport:
    """The smallest visible text and the clipped ones, with where they are."""

    min_px: float = float("inf")
    smallest: str = ""
    count: int = 0
    clipped: list[str] = field(default_factory=list)

    def see(self, px: float, what: str) -> None:
        self.count += 1
        if px < self.min_px:
            self.min_px, self.smallest = px, what


def font_px(font: QFont) -> float:
    if font.pixelSize() > 0:
        return float(font.pixelSize())
    return pt_to_px(font.pointSizeF()) if font.pointSizeF() > 0 else float(QFontInfo(font).pixelSize())


def _document_min_px(doc: QTextDocument) -> float:
    """The smallest character size in a rich-text document (inline font-size styles included)."""
    smallest = float("inf")
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.isValid() and fragment.text().strip():
                f = fragment.charFormat().font()
                smallest = min(smallest, font_px(f) if (f.pixelSize() > 0 or f.pointSizeF() > 0) else font_px(doc.defaultFont()))
            it += 1
        block = block.next()
    return smallest


def _name(w: object) -> str:
    obj = getattr(w, "objectName", lambda: "")()
    text = getattr(w, "text", lambda: "")
    text = text() if callable(text) else ""
    return f"{type(w).__name__}{'#' + obj if obj else ''} {str(text)[:30]!r}"


def _widget_text(w: QWidget) -> str:
    if isinstance(w, (QLabel, QAbstractButton, QLineEdit)):
        return w.text()
    if isinstance(w, QComboBox):
        return w.currentText()
    if isinstance(w, QGroupBox):
        return w.title()
    return "x"  # views, tab bars and text edits: measured whenever they are shown


def _scroll_area_of(w: QWidget) -> QAbstractScrollArea | None:
    """The nearest scroll area whose viewport holds `w` (not `w` itself), or None."""
    parent = w.parentWidget()
    while parent is not None:
        area = parent.parentWidget()
        if isinstance(area, QAbstractScrollArea) and parent is area.viewport():
            return area
        parent = area
    return None


def _cut_by_parents(w: QWidget, shown: QRect) -> bool:
    """`w` shows only `shown` of itself: True unless only the top or bottom of it is scrolled out
    of a scroll area that can scroll down to it."""
    area = _scroll_area_of(w)
    if area is None:
        return True
    viewport = area.viewport()
    inside = QRect(w.mapTo(viewport, QPoint(0, 0)), w.size()).intersected(viewport.rect())
    inside.translate(-w.mapTo(viewport, QPoint(0, 0)))
    if shown.width() < inside.width() - 1 or shown.height() < inside.height() - 1:
        return True  # something other than the viewport cuts it too
    if inside.width() < w.width() - 1:
        return True
    return area.verticalScrollBar().maximum() == 0


def _is_clipped(w: QWidget) -> bool:
    """Part of the widget cut off by a parent, or a one-line text wider than its widget."""
    shown = w.visibleRegion().boundingRect()
    if not shown.isEmpty() and (shown.width() < w.width() - 1 or shown.height() < w.height() - 1):
        if _cut_by_parents(w, shown):
            return True
    if isinstance(w, QLabel) and not w.wordWrap() and w.textFormat() != 1 and w.pixmap().isNull():
        text = w.text()
        if text and "<" not in text and "\n" not in text:
            return w.fontMetrics().horizontalAdvance(text) > w.contentsRect().width() + 1
    if isinstance(w, QAbstractButton) and w.text() and type(w).__name__ == "QPushButton":
        return w.fontMetrics().horizontalAdvance(w.text().replace("&", "")) > w.width()
    return False


def measure(root: QWidget, report: TextReport | None = None) -> TextReport:
    """Every visible text under `root` (widgets and pyqtgraph items)."""
    report = report or TextReport()
    for w in [root, *root.findChildren(QWidget)]:
        if not w.isVisible() or w.visibleRegion().isEmpty():
            continue
        if isinstance(w, pg.GraphicsView):
            _measure_scene(w, report)
            continue
        if not isinstance(w, TEXT_WIDGETS) or not _widget_text(w).strip():
            continue
        if isinstance(w, QLabel) and w.textFormat() != 0 and "<" in w.text():
            doc = QTextDocument()
            doc.setDefaultFont(w.font())
            doc.setHtml(w.text())
            px = min(_document_min_px(doc), font_px(w.font()))
        else:
            px = font_px(w.font())
        report.see(px, _name(w))
        if _is_clipped(w):
            report.clipped.append(_name(w))
    return report


def _measure_scene(view: pg.GraphicsView, report: TextReport) -> None:
    scene = view.scene()
    if scene is None:
        return
    shown = QRectF(view.viewport().rect())
    for item in scene.items():
        if not item.isVisible() or item.opacity() == 0:
            continue
        if isinstance(item, pg.AxisItem):
            if item.style.get("showValues", True) and item.isVisible() and item.picture is not None:
                report.see(font_px(item.style.get("tickFont") or item.font()), f"axis {item.orientation} ticks")
            continue
        if isinstance(item, QGraphicsTextItem) and item.toPlainText().strip():
            scale = item.deviceTransform(view.viewportTransform()).m22()
            px = _document_min_px(item.document()) * abs(scale or 1.0)
            report.see(px, f"plot text {item.toPlainText()[:30]!r}")
            box = view.mapFromScene(item.sceneBoundingRect()).boundingRect()
            if not shown.adjusted(-1, -1, 1, 1).contains(QRectF(box)):
                report.clipped.append(f"plot text {item.toPlainText()[:30]!r}")
