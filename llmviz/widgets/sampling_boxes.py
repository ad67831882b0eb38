"""The sampling controls the prediction and generation docks share: temperature, top-k, top-p."""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox


def sampling_boxes(temperature: float, top_k: int, top_p: float) -> tuple[QDoubleSpinBox, QSpinBox, QDoubleSpinBox]:
    """Temperature 0-5, top-k 0-100,000 (0 shows "top-k off") and top-p 0-1, at these values."""
    temp = QDoubleSpinBox()
    temp.setRange(0.0, 5.0)
    temp.setSingleStep(0.1)
    temp.setValue(temperature)
    temp.setPrefix("temperature ")
    k = QSpinBox()
    k.setRange(0, 100000)
    k.setValue(top_k)
    k.setPrefix("top-k ")
    k.setSpecialValueText("top-k off")
    p = QDoubleSpinBox()
    p.setRange(0.0, 1.0)
    p.setSingleStep(0.05)
    p.setValue(top_p)
    p.setPrefix("top-p ")
    return temp, k, p
