"""A splitter that stacks its panes when it is too narrow to put them side by side."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QWidget


class AdaptiveSplitter(QSplitter):
    """Side by side from `min_side_by_side` pixels wide, one above the other below it.

    A table beside a chart in a dock of the left column (~500 px on a 1600 px window) clipped
    both; stacked, each gets the dock's whole width.
    """

    def __init__(self, min_side_by_side: int = 900, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.min_side_by_side = min_side_by_side

    def resizeEvent(self, event) -> None:
        wanted = (Qt.Orientation.Horizontal if self.width() >= self.min_side_by_side
                  else Qt.Orientation.Vertical)
        if wanted != self.orientation():
            self.setOrientation(wanted)
            total = self.width() if wanted == Qt.Orientation.Horizontal else self.height()
            self.setSizes([total * 3 // 5, total * 2 // 5])
        super().resizeEvent(event)
