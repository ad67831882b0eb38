"""Builders for the boxes every view lays out by hand: a column or a row of widgets, a column that scrolls.

Each view builds a dozen such boxes; written out, they were the same five to ten lines again and
again (a QWidget, its QVBoxLayout, its margins, one add call a child), which hid what each box
holds. Here an item is a widget or a layout, `(item, stretch)` for one that takes the spare room,
or None for an empty stretch between the items around it.
"""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QBoxLayout, QFrame, QHBoxLayout, QLayout, QScrollArea, QVBoxLayout, QWidget

Item = QWidget | QLayout | tuple[QWidget | QLayout, int] | None
#: Left, top, right, bottom; one number for all four; None keeps what Qt gives the layout.
Margins = int | tuple[int, int, int, int] | None

BoxT = TypeVar("BoxT", bound=QBoxLayout)


def fill(layout: BoxT, *items: Item, margins: Margins = 0) -> BoxT:
    """Add `items` to `layout` in order, set its margins, and return it."""
    if isinstance(margins, int):
        layout.setContentsMargins(margins, margins, margins, margins)
    elif margins is not None:
        layout.setContentsMargins(*margins)
    for item in items:
        if item is None:
            layout.addStretch(1)
            continue
        child, stretch = item if isinstance(item, tuple) else (item, 0)
        if isinstance(child, QLayout):
            layout.addLayout(child, stretch)
        else:
            layout.addWidget(child, stretch)
    return layout


def column(*items: Item, margins: Margins = 0) -> QWidget:
    """A new widget holding `items` one above the other (no margins unless asked)."""
    panel = QWidget()
    fill(QVBoxLayout(panel), *items, margins=margins)
    return panel


def row(*items: Item, margins: Margins = 0) -> QHBoxLayout:
    """A new layout holding `items` side by side, to be added to another layout."""
    return fill(QHBoxLayout(), *items, margins=margins)


def vertical_scroll(widget: QWidget) -> QScrollArea:
    """`widget` in a frameless area that scrolls up and down only: it keeps its width, and its full height
    when the room around it is shorter (squeezed instead, its wrapped labels overlap in large fonts)."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area
