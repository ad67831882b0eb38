"""The explain dock's parts in presentation mode: retitled bars, shaded text, a row that wraps."""

from __future__ import annotations

import re

import numpy as np
from PySide6.QtGui import QTextCursor

from llmviz.presentation import PANEL_SHARE
from llmviz.widgets.presentation_style import PresentationStyle, pt_to_px
from llmviz.widgets.token_bars import TokenBars
from llmviz.widgets.token_shading import TokenShading

LABELS = ["The", "␣cat", "␣sat"]


def _title_px(bars: TokenBars) -> float:
    """The size the title's text is drawn at (its span's font-size)."""
    size, unit = re.findall(r"font-size:\s*([\d.]+)(pt|px)", bars.item.titleLabel.item.toHtml())[-1]
    return float(size) if unit == "px" else pt_to_px(float(size))


def test_a_retitled_plot_keeps_the_presentation_size_and_restores_its_new_title(qtbot):
    bars = TokenBars(y_label="attribution")
    qtbot.addWidget(bars)
    bars.set_values(np.array([0.1, -0.2, 0.3]), LABELS, np.arange(3), "gradient × input")
    desktop = _title_px(bars)
    style = PresentationStyle()
    style.apply(bars, 40)
    bars.set_values(np.array([0.3, 0.2, 0.1]), LABELS, np.arange(3), "integrated gradients")  # a redraw while presenting
    assert _title_px(bars) >= 40
    style.restore()
    assert bars.item.titleLabel.text == "integrated gradients"  # not the title it had when styled
    assert _title_px(bars) == desktop


def test_shaded_tokens_take_the_presentation_font(qtbot):
    shading = TokenShading()
    qtbot.addWidget(shading)
    shading.show()
    style = PresentationStyle()
    style.apply(shading, 40)
    shading.ensurePolished()
    shading.set_values(LABELS, np.array([0.1, -0.2, 0.3]), marked=2, caption="red raises the target")
    cursor = QTextCursor(shading.document())
    cursor.movePosition(QTextCursor.MoveOperation.End)
    fmt = cursor.charFormat()
    assert fmt.fontPointSize() == 0  # no absolute size in the text: it follows the widget's font
    font = shading.document().defaultFont()
    assert (font.pixelSize() if font.pixelSize() > 0 else pt_to_px(font.pointSizeF())) >= 40
    style.restore()


def test_the_explain_controls_wrap_to_fit_beside_the_lesson_panel_at_720(qtbot, host):
    from llmviz.views.explain import ExplainView

    view = ExplainView(host)
    qtbot.addWidget(view)
    view.show_content()
    style = PresentationStyle()
    style.apply(view, 24)  # presentation's text size at 1280x720
    view.content.ensurePolished()
    view.content.layout().activate()
    assert view.content.minimumSizeHint().width() <= 1280 * (1 - PANEL_SHARE)
    style.restore()
