"""The generation dock: tokens stream in, the live plot grows, stop/cancel keep the text, use as input."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QGuiApplication

from llmviz.core import generation_jobs as gen
from llmviz.core.session import Session
from llmviz.core.specs import ModelSpec
from llmviz.core.tasks import TaskContext
from llmviz.views.generation import PIPELINE, GenerationView

from ..timeouts import WAIT_MS
from .host_steps import load, run

PROMPT = "The cat sat on the mat and"


@pytest.fixture
def view(qtbot, host):
    v = GenerationView(host)
    qtbot.addWidget(v)
    v.resize(1100, 800)
    v.show()
    return v


def generate(qtbot, view, **settings):
    view.max_new.setValue(settings.get("max_new", 10))
    view.stop_at_eos.setChecked(settings.get("stop_at_eos", False))
    view.generate_button.click()
    assert view.running
    qtbot.waitUntil(lambda: not view.running, timeout=WAIT_MS)


def test_streams_the_same_tokens_as_the_core(qtbot, host, view, tiny_models):
    load(qtbot, host, [view], str(tiny_models["llama"]))
    run(qtbot, host, view, PROMPT)
    arrived = []
    original = view.add_step
    view.add_step = lambda step: (arrived.append(len(view.steps)), original(step))
    generate(qtbot, view, max_new=10)
    session = Session()
    session.load(ModelSpec(str(tiny_models["llama"]), device="cpu"))
    expected = gen.generate(session, TaskContext(), PROMPT, max_new_tokens=10, stop_at_eos=False)
    assert [s.token_id for s in view.steps] == [s.token_id for s in expected]
    assert arrived == list(range(10))  # one step at a time
    x, y = view.curves["prob"].getData()
    assert list(x) == list(range(10))
    np.testing.assert_allclose(y, [s.prob for s in expected], rtol=1e-4)
    _x, lat = view.curves["latency_ms"].getData()
    np.testing.assert_allclose(lat, [s.latency_s * 1000 for s in view.steps])
    assert view.text.toPlainText() == PROMPT + expected[-1].text
    assert "Generated the requested number" in view.status.text() and "tokens/s" in view.status.text()
    qtbot.waitUntil(lambda: view.attention_step == 9, timeout=WAIT_MS)  # the last step's, when done
    view.select_step(3)
    step = view.steps[3]
    assert view.top_table.rowCount() == 10 and view.top_table.item(0, 0).text() == step.top_pieces[0]
    qtbot.waitUntil(lambda: view.attention_step == 3, timeout=WAIT_MS)
    row = gen.attention_row(session, TaskContext(), expected[0].run_id, 3)
    np.testing.assert_allclose(view.attention.matrix, row.matrix, atol=1e-5)
    assert view.attention.matrix.shape == (3, step.context_len)
    assert view.attention.col_labels[-1] == view.steps[2].piece and view.markers[0].value() == 3
    assert view.continue_button.isEnabled() and view.use_button.isEnabled()


def test_stop_keeps_what_was_generated(qtbot, host, view, tiny_models):
    load(qtbot, host, [view], str(tiny_models["llama"]))
    run(qtbot, host, view, PROMPT)
    view.max_new.setValue(500)
    view.stop_at_eos.setChecked(False)
    original = view.add_step

    def add_and_stop(step):
        original(step)
        if len(view.steps) == 3:
            view.stop_button.click()  # the user presses Stop as the third token appears

    view.add_step = add_and_stop
    view.generate_button.click()
    qtbot.waitUntil(lambda: not view.running, timeout=WAIT_MS)
    n = len(view.steps)
    assert n == 3 + PIPELINE and "kept" in view.status.text()  # the steps already queued are kept too
    assert view.text.toPlainText() == PROMPT + view.steps[-1].text
    qtbot.wait(200)
    assert len(view.steps) == n and not host.busy  # nothing more arrives
    view.add_step = original
    view.max_new.setValue(4)
    view.continue_button.click()  # the worker-side state carries on where it stopped
    qtbot.waitUntil(lambda: not view.running, timeout=WAIT_MS)
    assert len(view.steps) == n + 4
    session = Session()
    session.load(ModelSpec(str(tiny_models["llama"]), device="cpu"))
    expected = gen.generate(session, TaskContext(), PROMPT, max_new_tokens=n + 4, stop_at_eos=False)
    assert [s.token_id for s in view.steps] == [s.token_id for s in expected]


def test_window_cancel_stops_generation(qtbot, host, view, tiny_models):
    load(qtbot, host, [view], str(tiny_models["llama"]))
    run(qtbot, host, view, PROMPT)
    view.max_new.setValue(500)
    original = view.add_step

    def add_and_cancel(step):
        original(step)
        if len(view.steps) == 2:
            host.cancel_all()  # Esc / the status bar's Cancel while the next step is in flight

    view.add_step = add_and_cancel
    view.generate_button.click()
    qtbot.waitUntil(lambda: not view.running, timeout=WAIT_MS)
    # the steps already queued either never start or finish and are kept: at most PIPELINE more
    assert 2 <= len(view.steps) <= 2 + PIPELINE and "kept" in view.status.text()
    qtbot.wait(300)
    assert not host.busy and not view.running
    assert view.generate_button.isEnabled() and not view.stop_button.isEnabled()


def test_context_length_notice(qtbot, host, view, tiny_models):
    load(qtbot, host, [view], str(tiny_models["llama"]))  # 64 positions
    trace = run(qtbot, host, view, "word " * 60)
    generate(qtbot, view, max_new=50)
    assert trace.num_tokens + len(view.steps) == 64
    assert "context length (64 tokens)" in view.status.text()
    assert not view.continue_button.isEnabled()


def test_bad_settings_and_models(qtbot, host, view, tiny_models):
    load(qtbot, host, [view], str(tiny_models["gpt2"]))
    run(qtbot, host, view, PROMPT)
    view.chat.setChecked(True)
    generate(qtbot, view)
    assert "no chat template" in view.status.text() and view.steps == []
    view.chat.setChecked(False)
    view.mode.setCurrentIndex(1)
    view.temperature.setValue(0.0)  # sampling at temperature 0 is greedy, not a crash
    generate(qtbot, view, max_new=3)
    assert len(view.steps) == 3 and "(greedy)" not in view.step_label.text()
    load(qtbot, host, [view], str(tiny_models["bert"]))
    run(qtbot, host, view, "the cat")
    assert "does not generate" in view.message_text


def test_use_as_input_and_copy(qtbot, window, tiny_models):
    window.set_text(PROMPT)
    with qtbot.waitSignal(window.host.sig_trace, timeout=WAIT_MS):
        window.load_model(ModelSpec(str(tiny_models["llama"]), device="cpu"))
    view = window.view("generation")
    qtbot.waitUntil(lambda: view.trace is not None and not window.host.busy, timeout=WAIT_MS)
    generate(qtbot, view, max_new=5)
    full = PROMPT + view.steps[-1].text
    view.copy_button.click()
    assert QGuiApplication.clipboard().text() == full
    with qtbot.waitSignal(window.host.sig_trace, timeout=WAIT_MS) as blocker:
        view.use_button.click()
    assert window.text_input.text() == full and blocker.args[0].text == full
