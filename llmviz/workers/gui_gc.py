"""Garbage collection on the GUI thread only, and never a full sweep of imported modules.

Python's automatic GC runs on whichever thread allocates.  When that is not the GUI thread
and a collected cycle holds a Qt object, Qt destroys it off its thread and the process
segfaults.  So automatic GC is disabled and a GUI-thread timer collects instead
(pyqtgraph's GarbageCollector does the same).

A sweep costs time in proportion to the objects it looks at, and the imports leave hundreds
of thousands of long-lived objects and almost no garbage; a sweep among them is a visible
freeze.  So nothing is collected until the imports are done; then they are moved to the
permanent generation with `gc.freeze()`, and later collections (every 200 ms, so each young
generation stays small) only look at objects created since.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


class GuiThreadCollector(QObject):
    """Collects generations 0/1/2 when their counts pass Python's own thresholds."""

    def __init__(self, interval_ms: int = 200) -> None:
        super().__init__()
        self.thresholds = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)
        self.frozen = False

    def check(self) -> None:
        if not self.frozen:
            return  # the worker is importing: hundreds of thousands of new objects, almost no garbage
        counts = gc.get_count()
        for generation in (0, 1, 2):
            if counts[generation] <= self.thresholds[generation]:
                break
            gc.collect(generation)

    def freeze_imports(self) -> None:
        """Exclude everything alive now (modules, classes, functions) from future collections."""
        if not self.frozen:
            gc.freeze()
            self.frozen = True


_collector: GuiThreadCollector | None = None


def gui_thread_collector() -> GuiThreadCollector:
    """The process-wide collector, created (on the GUI thread) on first use."""
    global _collector
    if _collector is None:
        _collector = GuiThreadCollector()
    return _collector
