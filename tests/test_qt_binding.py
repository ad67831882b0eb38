"""The Qt binding must not leak references to None (PySide6 6.12.0 does on Python 3.11).

With that release every void Qt call from Python drops one reference to None; a long
session then aborts with "Fatal Python error: none_dealloc".  pyproject.toml pins
PySide6-Essentials below 6.12; this test fails if a broken binding comes back.
"""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QGraphicsRectItem


def test_void_qt_calls_keep_none_alive(qtbot):
    item = QGraphicsRectItem(0, 0, 1, 1)
    before = sys.getrefcount(None)
    for _ in range(2000):
        item.setVisible(True)
    assert before - sys.getrefcount(None) < 100  # 6.12.0 drops 2000
