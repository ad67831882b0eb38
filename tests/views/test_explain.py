"""The explain dock on a real engine: target, methods, coarse-then-refined IG, faithfulness, neurons, export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmviz.views.explain import ExplainView
from llmviz.widgets.why_button import ExplainRequest

from ..timeouts import WAIT_MS as TIMEOUT
from .host_steps import load, run


@pytest.fixture
def explain(qtbot, host):
    v = ExplainView(host)
    qtbot.addWidget(v)
    v.resize(1200, 800)
    v.show()
    return v


def test_explains_the_top_prediction_and_shades_the_text(qtbot, host, explain, tiny_models):
    load(qtbot, host, [explain], str(tiny_models["llama"]))
    partials = []
    original = explain._partial
    explain._partial = lambda r: (partials.append(r), original(r))
    trace = run(qtbot, host, explain, "The cat sat on the mat and looked at the dog")
    result = explain.result
    assert result is not None and result.final
    assert set(result.methods) == {"gxi", "ig", "occlusion", "rollout", "vnorm"}
    assert result.completeness_gap <= 0.01
    assert partials and not partials[0].final and partials[0].ig_steps < result.ig_steps  # coarse first
    assert len(explain.shading.labels) == trace.num_tokens
    np.testing.assert_allclose(explain.shading.values, result.attributions[explain.shown.currentData()])
    assert "completeness gap" in explain.status.text()
    assert set(explain.removed_plot.curves) == {"gxi", "ig", "occlusion", "rollout", "vnorm", "random"}
    assert explain.areas.text()


def test_why_request_explains_another_position_and_token(qtbot, host, explain, tiny_models):
    load(qtbot, host, [explain], str(tiny_models["llama"]))
    run(qtbot, host, explain, "The cat sat on the mat")
    with qtbot.waitSignal(explain.sig_ready, timeout=TIMEOUT):
        explain.explain_target(ExplainRequest(position=2, token=42))
    assert explain.result.target.position == 2 and explain.result.target.token_id == 42
    assert len(explain.result.tokens) == 3


def test_refine_doubles_the_steps_when_asked_not_for_a_new_text(qtbot, host, explain, tiny_models, monkeypatch):
    """The tiny model's path is smooth (2 steps leave ~0.6 %), so the limit is set below that."""
    monkeypatch.setattr("llmviz.views.explain.REFINE_GAP", 0.001)
    load(qtbot, host, [explain], str(tiny_models["llama"]))
    for method, box in explain.method_boxes.items():
        box.setChecked(method == "ig")
    explain.faithful.setChecked(False)
    explain.steps.setValue(2)
    assert explain.refine.isChecked()  # on by default
    run(qtbot, host, explain, "The cat sat on the mat and looked at the dog")  # a new text explains by itself
    assert explain.result.ig_steps == 2 and explain.result.completeness_gap > 0.001
    assert "press Explain to refine" in explain.status.text()
    explain.refine.setChecked(False)
    with qtbot.waitSignal(explain.sig_ready, timeout=TIMEOUT):
        explain.explain_button.click()
    assert explain.result.ig_steps == 2
    assert "more steps would close it" in explain.status.text()
    explain.refine.setChecked(True)
    with qtbot.waitSignal(explain.sig_ready, timeout=TIMEOUT):
        explain.explain_button.click()
    assert explain.result.ig_steps > 2 and explain.result.completeness_gap <= 0.001
    assert "more steps" not in explain.status.text() and "refine" not in explain.status.text()
    assert any("refined from 2 steps" in note for note in explain.result.notes)


def test_bad_target_is_a_message_not_a_crash(qtbot, host, explain, tiny_models):
    load(qtbot, host, [explain], str(tiny_models["llama"]))
    run(qtbot, host, explain, "The cat sat on the mat")
    explain.token.setText("several words here")
    with qtbot.waitSignal(explain.sig_ready, timeout=TIMEOUT):
        explain.run()
    assert "not one" in explain.status.text()


def test_neurons_panel_lists_and_shows_a_neuron(qtbot, host, explain, tiny_models):
    load(qtbot, host, [explain], str(tiny_models["llama"]))
    trace = run(qtbot, host, explain, "The cat sat on the mat")
    explain.find_neurons()
    qtbot.waitUntil(lambda: explain.neuron_detail is not None, timeout=TIMEOUT)
    assert explain.neuron_list.rowCount() == 20
    assert explain.neuron_detail.activations.size == trace.num_tokens
    assert "raises most" in explain.promoted.text()


def test_encoder_explains_similarity(qtbot, host, explain, tiny_models):
    load(qtbot, host, [explain], str(tiny_models["bert"]))
    assert explain.token.isHidden() and not explain.compare.isHidden()
    run(qtbot, host, explain, "The cat sat on the mat")
    assert explain.result.target.kind == "similarity"


def test_export_csv(qtbot, host, explain, tiny_models, tmp_path, monkeypatch):
    load(qtbot, host, [explain], str(tiny_models["llama"]))
    run(qtbot, host, explain, "The cat sat on the mat")
    path = tmp_path / "attr.csv"
    monkeypatch.setattr("llmviz.views.explain.ask_csv_path", lambda *_a: str(path))
    explain._export_csv()
    frame = pd.read_csv(path)
    assert list(frame.columns[:3]) == ["position", "token", "token_id"] and "ig" in frame.columns
    assert (tmp_path / "attr-faithfulness.csv").exists()


def test_why_buttons_open_the_explain_dock_on_their_target(qtbot, window, tiny_models):
    from llmviz.core.specs import ModelSpec

    window.set_text("The cat sat on the mat")
    with qtbot.waitSignal(window.host.sig_trace, timeout=TIMEOUT):
        window.load_model(ModelSpec(str(tiny_models["llama"]), device="cpu"))
    prediction = window.view("prediction")
    qtbot.waitUntil(lambda: prediction.is_ready() and not window.host.busy, timeout=TIMEOUT)
    prediction.select_position(2)
    prediction.why_button.click()
    explain = window.view("explain")
    qtbot.waitUntil(lambda: explain.result is not None and explain.result.final
                    and explain.result.target.position == 2, timeout=TIMEOUT)
    assert window.docks["explain"].isVisible()
    generation = window.view("generation")
    request = generation.why_request()
    assert request is None  # nothing generated yet: nothing to ask
    similarity = window.view("similarity")
    assert not similarity.why_button.isEnabled()  # a decoder's "why" is a next token
