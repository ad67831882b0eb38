"""The precision dial: a QDial with its positions labelled around it.

Unavailable positions are grey and italic, and say why on hover; the current one is bold.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QDial, QStyle, QStyleOptionSlider, QToolTip, QWidget


class PrecisionDial(QDial):
    """A QDial with its positions labelled around it; unavailable positions are grey and say why on hover."""

    LABEL_MARGIN = 74  # room around the knob for the labels (at least; more for wide labels)
    MIN_RADIUS = 60
    LABEL_GAP = 4  # px kept free between neighbouring labels

    sig_resized = Signal()
    """The dial's smallest size changed (a new font or new labels): a fixed-width column around
    it refits."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWrapping(False)
        self.setNotchesVisible(True)
        self.setSingleStep(1)
        self.setPageStep(1)
        self.labels: list[str] = []
        self.enabled: list[bool] = []
        self.tips: list[str] = []
        self.setAccessibleName("Precision dial")
        self._fit_size()

    def _margin(self) -> float:
        """Room beside the knob for the widest label at the current font."""
        metrics = self.fontMetrics()
        widest = max((metrics.horizontalAdvance(t) for t in self.labels), default=0)
        return max(self.LABEL_MARGIN, widest + 16)

    def _label_at(self, i: int, center: QPointF, radius: float) -> QRectF:
        """Position `i`'s label just outside a knob of `radius` at `center`, at its angle."""
        a = self._angle(i)
        r = radius + 10
        metrics = self.fontMetrics()
        w, h = metrics.horizontalAdvance(self.labels[i]) + 6, metrics.height() + 2
        x = center.x() + r * math.cos(a) + (math.cos(a) - 1) * w / 2
        y = center.y() - r * math.sin(a) - (math.sin(a) + 1) * h / 2
        return QRectF(x, y, w, h)

    def needed_radius(self) -> float:
        """The smallest knob radius at which no two labels overlap.  Neighbours near the top
        sit side by side, so wide labels in a large font (NF4, NF4+DQ) need a larger circle."""
        gap = self.LABEL_GAP
        radius = float(self.MIN_RADIUS)
        while radius < 1000:
            rects = [self._label_at(i, QPointF(0, 0), radius).adjusted(-gap / 2, -gap / 2, gap / 2, gap / 2)
                     for i in range(len(self.labels))]
            if not any(a.intersects(b) for k, a in enumerate(rects) for b in rects[k + 1:]):
                return radius
            radius += 4
        return radius

    def _edge(self) -> float:
        """Room above and below the knob for the top and bottom labels."""
        return max(26, self.fontMetrics().height() + 10)

    def _fit_size(self) -> None:
        """320 × 280 on the desktop; larger when the font is (presentation mode), so the labels
        around the knob are never cut at the widget's edge nor printed over each other."""
        radius = self.needed_radius()
        old = (self.minimumWidth(), self.minimumHeight())
        self.setMinimumWidth(max(320, round(2 * (self._margin() + radius))))
        self.setFixedHeight(max(280, round(2 * (radius + self._edge()))))
        if (self.minimumWidth(), self.minimumHeight()) != old:
            self.sig_resized.emit()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self._fit_size()

    def set_positions(self, labels: list[str], enabled: list[bool], tips: list[str]) -> None:
        """Label the positions (one per label), with which can be chosen and each one's tooltip."""
        self.labels, self.enabled, self.tips = labels, enabled, tips
        self.blockSignals(True)
        self.setRange(0, max(0, len(labels) - 1))
        self.blockSignals(False)
        self._fit_size()
        self.update()

    def position_enabled(self, i: int) -> bool:
        """Whether position `i` exists and can run here."""
        return 0 <= i < len(self.enabled) and self.enabled[i]

    # -- geometry: QDial maps value v to the angle 4π/3 - (v - min) / (max - min) * 5π/3 ----------
    def _radius(self) -> float:
        return max(30.0, min(self.width() / 2 - self._margin(), self.height() / 2 - self._edge()))

    def _angle(self, value: int) -> float:
        span = max(1, self.maximum() - self.minimum())
        return 4 * math.pi / 3 - (value - self.minimum()) / span * (5 * math.pi / 3)

    def label_rect(self, i: int) -> QRectF:
        """Where position `i`'s label is drawn, just outside the knob at its angle."""
        return self._label_at(i, QPointF(self.width() / 2, self.height() / 2), self._radius())

    def position_at(self, pos: QPointF) -> int | None:
        """The position whose label is under `pos`, or None."""
        for i in range(len(self.labels)):
            if self.label_rect(i).adjusted(-4, -4, 4, 4).contains(pos):
                return i
        return None

    def paintEvent(self, event) -> None:
        option = QStyleOptionSlider()
        self.initStyleOption(option)
        r = int(self._radius())
        center = self.rect().center()
        option.rect = QRect(center.x() - r, center.y() - r, 2 * r, 2 * r)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.style().drawComplexControl(QStyle.ComplexControl.CC_Dial, option, painter, self)
        base = QFont(self.font())
        for i, text in enumerate(self.labels):
            font = QFont(base)
            current = i == self.value()
            font.setBold(current)
            font.setItalic(not self.position_enabled(i))
            painter.setFont(font)
            color = QColor("#0b5cad") if current else QColor("#222222")
            if not self.position_enabled(i):
                color = QColor("#9a9a9a")
            painter.setPen(QPen(color))
            painter.drawText(self.label_rect(i), Qt.AlignmentFlag.AlignCenter, text)
        painter.end()

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and self.tips:
            i = self.position_at(QPointF(event.pos()))
            QToolTip.showText(event.globalPos(), self.tips[self.value() if i is None else i], self)
            return True
        return super().event(event)

