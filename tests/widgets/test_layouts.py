"""The layout builders: items in order, stretches where asked, the margins given, a scroll that keeps the width."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from llmviz.widgets.layouts import column, fill, row, vertical_scroll


def _entries(layout):
    """(what, stretch) for each item: a widget, a layout, or "stretch" for an empty spacer."""
    out = []
    for i in range(layout.count()):
        item = layout.itemAt(i)
        what = item.widget() or item.layout() or ("stretch" if item.spacerItem() else None)
        out.append((what, layout.stretch(i)))
    return out


def test_column_holds_widgets_layouts_and_stretches_in_order(qtbot):
    a, b, c = QLabel("a"), QLabel("b"), QLabel("c")
    inner = QHBoxLayout()
    panel = column(a, (b, 2), None, inner, (c, 1))
    qtbot.addWidget(panel)
    layout = panel.layout()
    assert isinstance(layout, QVBoxLayout)
    assert _entries(layout) == [(a, 0), (b, 2), ("stretch", 1), (inner, 0), (c, 1)]
    assert layout.contentsMargins().left() == layout.contentsMargins().bottom() == 0
    assert a.parent() is panel


def test_margins_one_number_four_numbers_or_left_alone(qtbot):
    panel = column(QLabel(), margins=3)
    qtbot.addWidget(panel)
    m = panel.layout().contentsMargins()
    assert (m.left(), m.top(), m.right(), m.bottom()) == (3, 3, 3, 3)
    h = row(QLabel(), margins=(6, 0, 1, 2))
    m = h.contentsMargins()
    assert (m.left(), m.top(), m.right(), m.bottom()) == (6, 0, 1, 2)
    holder = QWidget()
    qtbot.addWidget(holder)
    untouched = QVBoxLayout(holder)
    before = untouched.contentsMargins()
    assert fill(untouched, QLabel(), margins=None) is untouched
    assert untouched.contentsMargins() == before


def test_vertical_scroll_keeps_the_width_and_has_no_frame(qtbot):
    body = QLabel("long text")
    area = vertical_scroll(body)
    qtbot.addWidget(area)
    assert area.widget() is body
    assert area.widgetResizable()
    assert area.frameShape() == QFrame.Shape.NoFrame
    assert area.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
