"""The hover read-out, large and next to the pointer (presentation mode).

On the desktop a plot's read-out is a line of text under it; on a projector the room follows
the pointer, so while presenting the same text also appears in a large tooltip beside it.
Any plot whose widget (or an ancestor) has a `readout` QLabel takes part: the heat maps, the
projection, the timeline.
"""

from __future__ import annotations

import html
import re

import pyqtgraph as pg
from PySide6.QtCore import QObject, QPoint, QPointF, QTimer
from PySide6.QtWidgets import QLabel, QToolTip, QWidget

_TAGS = re.compile(r"<[^>]+>")


def _readout_of(widget: QWidget) -> QLabel | None:
    node: QWidget | None = widget
    while node is not None:
        label = getattr(node, "readout", None)
        if isinstance(label, QLabel):
            return label
        node = node.parentWidget()
    return None


class HoverReadouts(QObject):
    """Follows every plot's read-out under a root widget while `active`."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.active = False
        self._hooked: dict[int, tuple[pg.GraphicsView, QLabel]] = {}

    def hook(self, root: QWidget) -> None:
        """Connect plots not yet followed (views built or redrawn since)."""
        self.active = True
        for view in root.findChildren(pg.GraphicsView):
            if id(view) in self._hooked:
                continue
            label = _readout_of(view)
            if label is None or view.scene() is None:
                continue
            self._hooked[id(view)] = (view, label)
            view.scene().sigMouseMoved.connect(
                lambda pos, lab=label, v=view: QTimer.singleShot(0, lambda: self._show(lab, v, pos)))

    def _show(self, label: QLabel, view: pg.GraphicsView, scene_pos: QPointF) -> None:
        """After the plot's own hover handler has updated the label: its text beside the pointer
        (unless the plot already shows it there, as the heat maps do)."""
        if not self.active:
            return
        text = html.unescape(_TAGS.sub("", label.text())).strip()
        if not text:
            return
        if QToolTip.isVisible() and QToolTip.text().strip() == text:
            return
        at = view.mapToGlobal(view.mapFromScene(scene_pos)) + QPoint(24, 24)
        QToolTip.showText(at, text, view)

    def release(self) -> None:
        self.active = False
        QToolTip.hideText()
