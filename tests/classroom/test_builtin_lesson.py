"""Every step of the built-in lesson renders in presentation mode on the bundled model, with no
text under 24 px at 1280×720 (widgets and plot items alike)."""

from __future__ import annotations

from llmviz.core.lessons import BUILTIN
from llmviz.widgets.text_metrics import measure


def test_every_builtin_step_renders_large(qtbot, window):
    window.resize(1280, 720)
    assert window.classroom.open_lesson(BUILTIN)
    player = window.classroom.player
    assert player.count() == 16 and not player.lesson.problems
    for index in range(player.count()):
        player.go(index)
        step = player.lesson.steps[index]
        view = window.view(step.view)
        qtbot.waitUntil(lambda v=view: window.trace is not None and not window.host.busy and v.is_ready(), timeout=180_000)
        assert window.presentation.current_view == step.view
        assert not view.message_text, (step.title, view.message_text)
        assert not player.window.presentation.panel.banner.isVisible(), window.presentation.panel.banner.text
        window.presentation.restyle()
        report = measure(window)
        assert report.count > 5 and report.min_px >= 24, (step.title, report.smallest)
    window.presentation.leave()
    assert measure(window).min_px < 24
