"""The layer slider of the embedding docks (similarity, projection): hidden state 0 (the
embeddings) to L (the last layer), with its label."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSlider

from ..core.embeddings_results import layer_name


def layer_slider(label_width: int) -> tuple[QSlider, QLabel]:
    """A horizontal slider with ticks and the label that names its layer."""
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setTickPosition(QSlider.TickPosition.TicksBelow)
    label = QLabel()
    label.setMinimumWidth(label_width)
    return slider, label


def set_layers(slider: QSlider, last: int, value: int | None = None) -> None:
    """Range 0..last (and `value`, when given) without a valueChanged signal."""
    slider.blockSignals(True)
    slider.setRange(0, max(0, last))
    if value is not None:
        slider.setValue(value)
    slider.blockSignals(False)


def layer_text(layer: int, num_layers: int) -> str:
    return f"{layer_name(layer, num_layers)}  ({layer}/{num_layers})"
