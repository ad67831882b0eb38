"""Lessons in the window: keys move through steps, a broken step shows a banner and the others
work, the quiz's answers and "Show me", sessions round-trip, the handout has a page per step."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt

from llmviz.core.lessons import parse_lesson
from llmviz.handout import HandoutWriter

from .support import small_lesson, step_drawn


def _open(qtbot, window, tmp_path, tiny_models, broken=False):
    path = tmp_path / "lesson.md"
    path.write_text(small_lesson(tiny_models["llama"], broken), encoding="utf-8")
    assert window.classroom.open_lesson(str(path))
    if broken:  # the first step has no view to draw: its text and the banner only
        qtbot.waitUntil(lambda: window.trace is not None and not window.host.busy, timeout=120_000)
    else:
        qtbot.waitUntil(lambda: step_drawn(window), timeout=120_000)
    return window.classroom.player


def test_keys_move_through_the_steps(qtbot, window, tmp_path, tiny_models):
    player = _open(qtbot, window, tmp_path, tiny_models)
    panel = window.presentation.panel
    assert player.current() == 0 and panel.counter.text() == "Step 1 / 3"
    assert window.view("attention").state()["layer"] == 1
    for key, expected in ((Qt.Key.Key_Right, 1), (Qt.Key.Key_PageDown, 2), (Qt.Key.Key_Space, 2),
                          (Qt.Key.Key_Left, 1), (Qt.Key.Key_PageUp, 0), (Qt.Key.Key_End, 2), (Qt.Key.Key_Home, 0)):
        qtbot.keyClick(window, key)
        assert player.current() == expected, key
    qtbot.keyClick(window, Qt.Key.Key_3)
    assert "3" in panel.jump.text()
    qtbot.keyClick(window, Qt.Key.Key_Return)
    assert player.current() == 2 and window.presentation.current_view == "attention"
    qtbot.waitUntil(lambda: step_drawn(window) and "Layer" in window.presentation.panel.explanation.text(), timeout=60_000)
    m = re.search(r"Layer (\d+), head (\d+)", panel.explanation.text())
    state = window.view("attention").state()
    assert (state["layer"], state["head"]) == (int(m.group(1)), int(m.group(2)))
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.presentation.active and window.menuBar().isVisible()


def test_a_broken_step_shows_a_banner_and_the_others_work(qtbot, window, tmp_path, tiny_models):
    player = _open(qtbot, window, tmp_path, tiny_models, broken=True)
    banner = window.presentation.panel.banner
    assert banner.isVisible() and "lesson.md, line 13" in banner.text
    assert window.presentation.panel.title.text() == "First"
    qtbot.keyClick(window, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: step_drawn(window), timeout=60_000)
    assert not banner.isVisible()
    assert window.presentation.current_view == "tokens" and window.view("tokens").state()["second"] == "bert-bundled"
    assert player.current() == 1


def test_quiz_answers_and_show_me(qtbot, window, tmp_path, tiny_models):
    _open(qtbot, window, tmp_path, tiny_models)
    window.presentation.leave()
    window.show_view_state("quiz", {"tabs": 0})
    quiz = window.view("quiz")
    qtbot.waitUntil(lambda: quiz.is_ready() and quiz.quiz is not None, timeout=60_000)
    assert quiz.quiz.values["parameters"] == window.info.num_parameters
    card = next(c for c in quiz.cards if c.question.key == "previous_head")
    card.buttons[card.question.answer].click()
    assert "1 / 1" in quiz.score.text() and "Right" in card.verdict.text()
    wrong = next(c for c in quiz.cards if c.question.key == "int4")
    wrong.buttons[(wrong.question.answer + 1) % len(wrong.buttons)].click()
    assert "1 / 2" in quiz.score.text() and "Not quite" in wrong.verdict.text()
    state = card.question.show_state
    card.sig_show.emit(card.question.show_view, dict(state))
    assert window.view("attention").state()["layer"] == state["layer"]
    assert window.view("attention").state()["head"] == state["head"]


def test_a_session_round_trips_in_the_window(qtbot, window, tmp_path, tiny_models):
    _open(qtbot, window, tmp_path, tiny_models)
    window.presentation.leave()
    path = tmp_path / "class.json"
    window.classroom.save_session(str(path))
    saved_text = window.text_input.text()
    window.view("attention").restore_state({"layer": 2})
    window.text_input.set_text("Something else entirely")
    data = window.classroom.open_session(str(path))
    assert data is not None and data.model_source == str(tiny_models["llama"])
    qtbot.waitUntil(lambda: window.trace is not None and window.trace.text == saved_text and not window.host.busy,
                    timeout=120_000)
    assert window.text_input.text() == saved_text
    assert window.view("attention").state()["layer"] == 1
    assert str(path.resolve()) in window.classroom.recent_sessions()


def test_a_session_whose_model_fails_restores_the_rest(qtbot, window, tmp_path, tiny_models):
    _open(qtbot, window, tmp_path, tiny_models)
    window.presentation.leave()
    path = tmp_path / "bad.json"
    window.classroom.save_session(str(path))
    path.write_text(path.read_text().replace(str(tiny_models["llama"]), str(tmp_path / "gone")), encoding="utf-8")
    window.text_input.set_text("changed")
    with qtbot.waitSignal(window.host.sig_finished, timeout=60_000, check_params_cb=lambda o: o.channel == "load"):
        window.classroom.open_session(str(path))
    assert window.text_input.text() == "The cat sat on the mat"
    assert "could not be loaded" in window.message_bar.text and "rest of the session" in window.message_bar.text


def test_added_steps_save_as_a_lesson(qtbot, window, tmp_path, tiny_models):
    _open(qtbot, window, tmp_path, tiny_models)
    window.classroom.add_current_view_as_step()
    out = tmp_path / "more.md"
    window.classroom.save_lesson(str(out))
    lesson = parse_lesson(out.read_text(encoding="utf-8"))
    assert len(lesson.steps) == 4 and lesson.steps[-1].view == "attention" and not lesson.problems
    assert lesson.steps[-1].state["layer"] == 1


def test_the_handout_has_one_page_per_step(qtbot, window, tmp_path, tiny_models):
    player = _open(qtbot, window, tmp_path, tiny_models)
    out = tmp_path / "handout.pdf"
    writer = HandoutWriter(window, player, str(out))
    with qtbot.waitSignal(writer.sig_done, timeout=300_000):
        writer.start()
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", data)) == 3
    assert len(re.findall(rb"/Subtype\s*/Image", data)) == 3  # every page shows its view
    assert len(data) > 30_000
