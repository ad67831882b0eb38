"""What a user set in each view survives a round trip (sessions, restarts), and bad values don't throw."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QAbstractButton, QAbstractSlider, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox, QTabWidget

from llmviz.views import VIEWS
from llmviz.widgets.widget_state import read_value, write_value


def another_value(widget):
    """A valid value different from the control's current one, when the control has one."""
    if isinstance(widget, QDoubleSpinBox):
        return widget.maximum() if widget.value() != widget.maximum() else widget.minimum()
    if isinstance(widget, (QSpinBox, QAbstractSlider)):
        return widget.maximum() if widget.value() != widget.maximum() else widget.minimum()
    if isinstance(widget, QAbstractButton):
        return not widget.isChecked()
    if isinstance(widget, QComboBox) and widget.count() > 1:
        other = (widget.currentIndex() + 1) % widget.count()
        return widget.itemData(other) if widget.itemData(other) is not None else widget.itemText(other)
    if isinstance(widget, QLineEdit):
        return widget.text() + " changed"
    if isinstance(widget, QTabWidget) and widget.count() > 1:
        return (widget.currentIndex() + 1) % widget.count()
    return None


@pytest.mark.parametrize("view_cls", VIEWS, ids=[v.NAME for v in VIEWS])
def test_state_round_trips(qtbot, host, view_cls):
    view = view_cls(host)
    qtbot.addWidget(view)
    assert view.STATE, f"{view_cls.NAME} declares no state"
    before = view.state()
    assert set(before) >= set(view.STATE) - {n for n in view.STATE if read_value(view.control(n)) is None}
    changed = 0
    for name in view.STATE:
        value = another_value(view.control(name))
        if value is not None and write_value(view.control(name), value):
            changed += 1
    assert changed, "no control could be changed"
    assert view.restore_state(before) == []
    after = view.state()
    assert {k: after[k] for k in view.STATE if k in before} == {k: before[k] for k in view.STATE if k in before}


def test_bad_values_are_reported_not_raised(qtbot, host):
    view = VIEWS[[v.NAME for v in VIEWS].index("attention")](host)
    qtbot.addWidget(view)
    unused = view.restore_state({"layer": "seven", "hide_first": 3, "no_such_control": 1, "tabs": 99})
    assert set(unused) == {"layer", "hide_first", "no_such_control", "tabs"}
