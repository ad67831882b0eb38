"""Presentation mode: one view fills the window, text is large, keys move, leaving restores the layout."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolTip

from llmviz.core.specs import ModelSpec
from llmviz.widgets.heatmap import HeatmapPlot
from llmviz.widgets.text_metrics import measure


def load(qtbot, window, source, timeout=120_000):
    with qtbot.waitSignal(window.host.sig_trace, timeout=timeout):
        window.load_model(ModelSpec(source, device="cpu"))
    qtbot.waitUntil(lambda: not window.host.busy, timeout=timeout)


def test_presentation_enlarges_text_and_restores_layout(qtbot, window, tiny_models):
    window.resize(1280, 720)
    window.set_text("The cat sat on the mat because it was warm")
    load(qtbot, window, str(tiny_models["llama"]))
    # The status bar is taller while a progress bar shows: take the layout once the work is done.
    qtbot.waitUntil(lambda: not window.host.busy, timeout=60_000)
    qtbot.waitUntil(lambda: not window.progress.isVisible(), timeout=5_000)
    qtbot.wait(800)
    geometry_before = {n: d.geometry() for n, d in window.docks.items() if not d.visibleRegion().isEmpty()}
    visible_before = {n for n, d in window.docks.items() if not d.visibleRegion().isEmpty()}
    window.presentation.enter("attention")
    qtbot.waitUntil(lambda: window.view("attention").is_ready(), timeout=60_000)
    window.presentation.restyle()
    qtbot.wait(50)
    assert not window.menuBar().isVisible() and not window.top_bar.isVisible()
    shown = [n for n, d in window.docks.items() if d.isVisible()]
    assert shown == ["attention"]
    report = measure(window)
    assert report.count > 5
    assert report.min_px >= 24, report.smallest
    heatmap = next(h for h in window.view("attention").findChildren(HeatmapPlot) if h.isVisible())
    centre = heatmap.item.getViewBox().sceneBoundingRect().center()
    heatmap.plot.scene().sigMouseMoved.emit(centre)
    qtbot.waitUntil(lambda: QToolTip.isVisible() and QToolTip.text().strip() != "", timeout=5_000)
    assert QToolTip.text() in heatmap.readout.text() or heatmap.readout.text().startswith(QToolTip.text()[:10])
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert window.presentation.current_view != "attention"
    qtbot.keyClick(window, Qt.Key.Key_B)
    assert window.presentation.blank.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.presentation.blank.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.presentation.active
    assert window.menuBar().isVisible()
    assert {n for n, d in window.docks.items() if not d.visibleRegion().isEmpty()} == visible_before
    qtbot.waitUntil(lambda: not window.host.busy, timeout=60_000)
    qtbot.waitUntil(lambda: not window.progress.isVisible(), timeout=5_000)
    qtbot.wait(800)
    assert {n: d.geometry() for n, d in window.docks.items() if not d.visibleRegion().isEmpty()} == geometry_before
    assert measure(window).min_px < 24  # the desktop's own sizes are back
