"""Garbage collection on the GUI thread only, and never a full sweep of imported modules.

Python's automatic GC runs on whichever thread allocates.  When that is the worker and a
collected cycle holds a Qt object, Qt destroys it off its thread and the process
segfaults (seen in this project's tests).  So automatic GC is disabled and a GUI-thread
timer collects instead (pyqtgraph's GarbageCollector does the same).

A full (generation 2) collection of a heap holding torch and transformers (~350k
objects) takes ~350 ms, a visible freeze; once the worker has imported them they are
moved to the permanent generation with `gc.freeze()`, after which a full collection
only looks at objects created since.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


class GuiThreadCollector(QObject):
    """Collects generations 0/1/2 when their counts pass Python's own thresholds."""

    def __init__(self, interval_ms: int = 500) -> None:
        super().__init__()
        self.thresholds = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)
        self.frozen = False

    def check(self) -> None:
        counts = gc.get_count()
        # Before the imports are frozen a full collection would sweep them all: young generations only.
        for generation in (0, 1, 2) if self.frozen else (0, 1):
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
