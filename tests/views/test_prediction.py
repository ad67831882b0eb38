"""The prediction dock: bars follow temperature/top-k/top-p live, any position, the logit lens grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmviz.core.sampling import sampling_distribution, softmax
from llmviz.views.prediction import PredictionView, short

from .host_steps import load, run


@pytest.fixture
def view(qtbot, host):
    v = PredictionView(host)
    qtbot.addWidget(v)
    v.resize(1100, 800)
    v.show()
    return v


def bar_widths(bars) -> np.ndarray:
    return np.asarray(bars.opts["width"], dtype=float)


def test_bars_follow_the_sampling_controls(qtbot, host, view, tiny_models):
    load(qtbot, host, [view], str(tiny_models["llama"]))
    trace = run(qtbot, host, view, "The cat sat on the mat")
    result = view.logits
    assert result.position == trace.num_tokens - 1
    n = view.bars.value()
    ids = result.top_ids[:n]
    np.testing.assert_allclose(bar_widths(view.model_bars), softmax(result.logits)[ids], rtol=1e-6)
    ticks = view.bar_item.getAxis("left")._tickLevels[0]
    assert [t[1] for t in ticks] == list(result.top_labels[:n])
    view.temperature.setValue(0.5)
    np.testing.assert_allclose(bar_widths(view.sample_bars), sampling_distribution(result.logits, 0.5, 0, 1.0)[ids], rtol=1e-6)
    view.top_k.setValue(2)
    assert (bar_widths(view.sample_bars) > 0).sum() == 2 and "keeps 2 tokens" in view.bar_summary.text()
    view.top_k.setValue(0)
    view.top_p.setValue(0.0)  # greedy, no division by zero
    assert list(bar_widths(view.sample_bars)[:2]) == [1.0, 0.0] and "greedy: top-p 0" in view.bar_summary.text()
    view.top_p.setValue(1.0)
    view.temperature.setValue(0.0)
    assert bar_widths(view.sample_bars)[0] == 1.0 and "greedy: temperature 0" in view.bar_summary.text()
    np.testing.assert_allclose(bar_widths(view.model_bars), softmax(result.logits)[ids], rtol=1e-6)  # unchanged


def test_clicking_a_token_predicts_after_it(qtbot, host, view, tiny_models):
    load(qtbot, host, [view], str(tiny_models["llama"]))
    trace = run(qtbot, host, view, "The cat sat on the mat")
    with qtbot.waitSignal(view.sig_ready, timeout=60_000):
        view.chips.sig_clicked.emit(2)
    assert view.logits.position == 2 and view.chips.selected == 2
    assert view.logits.actual_next == int(trace.tokens.ids[3])
    assert f"position 2 of {trace.num_tokens - 1}" in view.bar_title.text()
    assert "actually follows in the text" in view.bar_summary.text()


def test_logit_lens_grid(qtbot, host, view, tiny_models, tmp_path):
    load(qtbot, host, [view], str(tiny_models["gpt2"]))
    trace = run(qtbot, host, view, "one two three four five six")
    lens, plot = view.lens_result, view.lens_plot
    layers = trace.num_states
    assert plot.matrix.shape == (layers, trace.num_tokens)
    np.testing.assert_allclose(plot.matrix[0], lens.top_probs[-1, :, 0])  # the last layer is the top row
    np.testing.assert_allclose(plot.matrix[-1], lens.top_probs[0, :, 0])  # embeddings at the bottom
    assert plot.row_labels[0].startswith("last") and plot.row_labels[-1] == "0 embed"
    assert len(plot.texts.shown) == layers * trace.num_tokens
    assert plot.texts.shown[1] == short(lens.top_labels[-1][1][0])  # top row = last layer, written in the cell
    described = plot.describe(0, 1)
    assert described.startswith(f"layer {layers - 1}, after") and lens.top_labels[-1][1][0] in described
    view.lens_colour.setCurrentIndex(1)  # colour by the probability of the token that really follows
    np.testing.assert_allclose(plot.matrix[0, :-1], lens.actual_prob[-1, :-1])
    frame = view.lens_frame()
    assert len(frame) == layers * trace.num_tokens * 5 and set(frame["rank"]) == {1, 2, 3, 4, 5}
    with qtbot.waitSignal(view.sig_ready, timeout=60_000):
        plot.sig_clicked.emit(0, 2)
    assert view.logits.position == int(lens.positions[2]) and view.tabs.currentIndex() == 0


def test_long_text_lens_window(qtbot, host, view, tiny_models):
    load(qtbot, host, [view], str(tiny_models["llama"]))
    trace = run(qtbot, host, view, "word " * 40)
    assert list(view.lens_result.positions) == list(range(trace.num_tokens - 24, trace.num_tokens))
    view.lens_start.setValue(3)
    view.lens_count.setValue(5)
    with qtbot.waitSignal(view.sig_ready, timeout=60_000):
        view.request_lens()
    assert list(view.lens_result.positions) == [3, 4, 5, 6, 7] and view.lens_plot.matrix.shape[1] == 5


def test_encoder_model_says_why_not(qtbot, host, view):
    load(qtbot, host, [view], "bundled:minilm")
    run(qtbot, host, view, "the cat sat")
    assert "encoder-only" in view.message_text and "next token" in view.message_text


def test_real_smollm2(qtbot, host, view):
    load(qtbot, host, [view], "bundled:smollm2")
    run(qtbot, host, view, "The capital of France is Paris. The capital of Germany is")
    assert view.logits.top_labels[0] == "␣Berlin"
    assert view.lens_plot.lens.top_labels[-1][-1][0] == "␣Berlin"
    assert pd.notna(view.lens_frame()["probability"]).all()
