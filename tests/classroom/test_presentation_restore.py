"""What presentation mode and a lesson change comes back on leaving: the attention view's colour
map (its combo shows the map actually drawn while presenting), the plots' colours (Okabe-Ito
while presenting), and the user's own text and view settings after a lesson."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt

from llmviz.core.specs import ModelSpec
from llmviz.widgets.presentation_style import OKABE_ITO, PresentationStyle

from .support import small_lesson, step_drawn


def _load(qtbot, window, source, text):
    window.set_text(text)
    with qtbot.waitSignal(window.host.sig_trace, timeout=120_000):
        window.load_model(ModelSpec(source, device="cpu"))
    qtbot.waitUntil(lambda: not window.host.busy, timeout=120_000)


def test_the_colour_map_combo_shows_the_map_in_use(qtbot, window, tiny_models):
    _load(qtbot, window, str(tiny_models["llama"]), "The cat sat on the mat")
    view = window.view("attention")
    bar = view.head_panel.heatmap.bar
    assert view.colormap.currentData() == "viridis"
    window.presentation.enter("attention")
    qtbot.waitUntil(lambda: view.is_ready(), timeout=60_000)
    window.presentation.restyle()
    assert view.colormap.currentData() == "cividis" and bar.colorMap().name == "cividis"
    assert view.desktop_state()["colormap"] == "viridis"  # what a session saved now keeps
    window.presentation.leave()
    assert view.colormap.currentData() == "viridis" and bar.colorMap().name == "viridis"
    # A choice made while presenting is the user's, and stays.
    view.colormap.setCurrentIndex(view.colormap.findData("cividis"))
    window.presentation.enter("attention")
    view.colormap.setCurrentIndex(view.colormap.findData("viridis"))
    window.presentation.leave()
    assert view.colormap.currentData() == "viridis"


def test_plots_take_the_okabe_ito_palette_and_give_it_back(qtbot):
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    tab_blue = plot.plot([0, 1], [0, 1], pen=pg.mkPen("#1f77b4", width=1))
    okabe_orange = plot.plot([0, 1], [1, 0], pen=pg.mkPen("#E69F00", width=1))
    grey = plot.plot([0, 1], [0.5, 0.5], pen=pg.mkPen("#888888", width=1))
    bars = pg.BarGraphItem(x=[0, 1], height=[1, 2], width=0.5, brush="#d62728")
    plot.addItem(bars)
    label = pg.TextItem("blue", color="#1f77b4")
    plot.addItem(label)
    style = PresentationStyle()
    style.apply(plot, 24)
    new_blue = tab_blue.opts["pen"].color().name().upper()
    assert new_blue in OKABE_ITO and new_blue != "#E69F00"  # a palette colour the plot does not use yet
    assert label.color.name().upper() == new_blue  # the label keeps its curve's colour
    assert okabe_orange.opts["pen"].color().name().upper() == "#E69F00"
    assert grey.opts["pen"].color().name().upper() == "#888888"
    assert bars.opts["brush"].color().name().upper() in OKABE_ITO
    style.restore()
    assert tab_blue.opts["pen"].color().name().upper() == "#1F77B4"
    assert label.color.name().upper() == "#1F77B4"
    assert pg.mkBrush(bars.opts["brush"]).color().name().upper() == "#D62728"


def test_leaving_a_lesson_gives_back_the_users_text_and_settings(qtbot, window, tmp_path, tiny_models):
    mine = "Colourless green ideas sleep furiously"
    _load(qtbot, window, str(tiny_models["llama"]), mine)
    attention = window.view("attention")
    attention.restore_state({"layer": 0, "log_scale": True})
    path = tmp_path / "lesson.md"
    path.write_text(small_lesson(tiny_models["llama"]), encoding="utf-8")
    assert window.classroom.open_lesson(str(path))
    qtbot.waitUntil(lambda: step_drawn(window), timeout=120_000)
    assert window.text_input.text() == "The cat sat on the mat" and attention.state()["layer"] == 1
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.presentation.active
    assert window.text_input.text() == mine
    qtbot.waitUntil(lambda: window.trace is not None and window.trace.text == mine and not window.host.busy,
                    timeout=120_000)
    state = attention.state()
    assert state["layer"] == 0 and state["log_scale"] is True
    # Presenting the lesson again shows its step, and leaving gives the user's text back again.
    window.presentation.enter()
    qtbot.waitUntil(lambda: step_drawn(window) and window.text_input.text() == "The cat sat on the mat",
                    timeout=120_000)
    window.presentation.leave()
    assert window.text_input.text() == mine
