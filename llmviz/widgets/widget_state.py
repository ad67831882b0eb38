"""Reading and writing what a user set in a control, as a plain JSON value.

Views declare their user-facing controls by attribute name (DockView.STATE); these two
functions turn each into a value a session file can hold and back. Writing goes through
the control's own setter, so the view reacts as if the user had made the change (and Qt
clamps a value out of range). Values of the wrong type are ignored, not raised: a session
written by another version must restore what it can.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSlider,
    QComboBox,
    QDoubleSpinBox,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QTabWidget,
    QWidget,
)

JSON = (str, int, float, bool)


def read_value(widget: QWidget) -> Any:
    """The control's current value: a number, a bool, a string; None for controls it does not know."""
    if isinstance(widget, QDoubleSpinBox):
        return float(widget.value())
    if isinstance(widget, (QSpinBox, QAbstractSlider)):
        return int(widget.value())
    if isinstance(widget, QAbstractButton):
        return bool(widget.isChecked())
    if isinstance(widget, QComboBox):
        data = widget.currentData()
        return data if isinstance(data, JSON) else widget.currentText()
    if isinstance(widget, QLineEdit):
        return widget.text()
    if isinstance(widget, QPlainTextEdit):
        return widget.toPlainText()
    if isinstance(widget, QTabWidget):
        return int(widget.currentIndex())
    return None


def write_value(widget: QWidget, value: Any) -> bool:
    """Set the control to `value` as the user would; False when the value does not fit it."""
    if isinstance(value, bool) and not isinstance(widget, (QAbstractButton, QComboBox)):
        return False
    if isinstance(widget, QDoubleSpinBox) and isinstance(value, (int, float)):
        widget.setValue(float(value))
    elif isinstance(widget, (QSpinBox, QAbstractSlider)) and isinstance(value, (int, float)):
        widget.setValue(int(value))
    elif isinstance(widget, QAbstractButton) and isinstance(value, bool):
        widget.setChecked(value)
    elif isinstance(widget, QComboBox) and isinstance(value, JSON):
        index = widget.findData(value)
        if index < 0:
            index = widget.findText(str(value))
        if index >= 0:
            widget.setCurrentIndex(index)
        elif widget.isEditable():
            widget.setCurrentText(str(value))
        else:
            return False
    elif isinstance(widget, QLineEdit) and isinstance(value, str):
        widget.setText(value)
    elif isinstance(widget, QPlainTextEdit) and isinstance(value, str):
        widget.setPlainText(value)
    elif isinstance(widget, QTabWidget) and isinstance(value, int) and 0 <= value < widget.count():
        widget.setCurrentIndex(value)
    else:
        return False
    return True
