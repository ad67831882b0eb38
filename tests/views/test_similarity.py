"""The similarity and projection docks: what is drawn for each layer, centring, two texts, exports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmviz.views.projection import ProjectionView
from llmviz.views.similarity import SimilarityView

from .host_steps import load, run


@pytest.fixture
def similarity(qtbot, host):
    v = SimilarityView(host)
    qtbot.addWidget(v)
    v.resize(1000, 700)
    v.show()
    return v


@pytest.fixture
def projection(qtbot, host):
    v = ProjectionView(host)
    qtbot.addWidget(v)
    v.resize(1000, 700)
    v.show()
    return v


def cosine(a: np.ndarray, b: np.ndarray | None = None, center: bool = False) -> np.ndarray:
    """The notebook's cosine similarity, written here independently of llmviz's."""
    import torch

    ta = torch.nn.functional.normalize(torch.from_numpy(a), dim=-1)
    tb = ta if b is None else torch.nn.functional.normalize(torch.from_numpy(b), dim=-1)
    if center:
        mean = (ta if b is None else torch.cat([ta, tb])).mean(0)
        ta = torch.nn.functional.normalize(ta - mean, dim=-1)
        tb = ta if b is None else torch.nn.functional.normalize(tb - mean, dim=-1)
    return (ta @ tb.T).clamp(-1, 1).numpy()


def redraw(qtbot, view, change) -> None:
    """Change a control and wait until the engine's map for it is drawn."""
    with qtbot.waitSignal(view.sig_ready, timeout=60_000):
        view.mark_busy()
        change()


def test_layer_slider_and_centring_redraw_the_map(qtbot, host, similarity, minilm_session):
    load(qtbot, host, [similarity], "bundled:minilm")
    trace = run(qtbot, host, similarity, "The cat sat on the mat")
    hidden = minilm_session.run("The cat sat on the mat").hidden_states  # the same run, in this process
    plot = similarity.heatmap
    assert similarity.slider.maximum() == 6 and similarity.layer == 6  # starts at the last hidden state
    np.testing.assert_allclose(plot.matrix, cosine(hidden[6]), atol=1e-5)
    assert plot.levels == (-1.0, 1.0) and plot.row_labels == trace.labels() == plot.col_labels
    redraw(qtbot, similarity, lambda: similarity.slider.setValue(0))
    np.testing.assert_allclose(plot.matrix, cosine(hidden[0]), atol=1e-5)
    assert "embeddings" in similarity.layer_label.text()
    raw_mean = plot.matrix[~np.eye(trace.num_tokens, dtype=bool)].mean()
    redraw(qtbot, similarity, lambda: similarity.center.setChecked(True))
    np.testing.assert_allclose(plot.matrix, cosine(hidden[0], center=True), atol=1e-5)
    assert plot.matrix[~np.eye(trace.num_tokens, dtype=bool)].mean() < raw_mean
    assert "Centred" in similarity.note.text()
    assert similarity.last_redraw_ms > 0


def test_two_texts(qtbot, host, similarity, minilm_session):
    load(qtbot, host, [similarity], "bundled:minilm")
    trace = run(qtbot, host, similarity, "The cat sat on the mat")
    first = minilm_session.run("The cat sat on the mat").hidden_states
    second = minilm_session.run("A kitten rested on the rug").hidden_states
    similarity.other_text.setText("A kitten rested on the rug")
    with qtbot.waitSignal(similarity.sig_ready, timeout=60_000):
        similarity.request_comparison()
    comp = similarity.comparison
    assert similarity.tabs.currentIndex() == 1
    assert similarity.cross.matrix.shape == (trace.num_tokens, comp.other_tokens.ids.size)
    np.testing.assert_allclose(similarity.cross.matrix, cosine(first[6], second[6]), atol=1e-5)
    assert f"{comp.sentence[6]:.3f}" in similarity.sentence_label.text()
    x, y = similarity.sentence_curve.getData()
    np.testing.assert_allclose(y, comp.sentence) and list(x) == list(range(7))
    redraw(qtbot, similarity, lambda: similarity.slider.setValue(2))
    np.testing.assert_allclose(similarity.cross.matrix, cosine(first[2], second[2]), atol=1e-5)
    assert f"{comp.sentence[2]:.3f}" in similarity.sentence_label.text() and similarity.sentence_marker.value() == 2


def test_empty_second_text_is_refused(qtbot, host, similarity, tiny_models):
    load(qtbot, host, [similarity], str(tiny_models["llama"]))
    run(qtbot, host, similarity, "one two three")
    similarity.other_text.setText("   ")
    similarity.request_comparison()
    assert "Type a second text" in similarity.sentence_label.text() and not host.busy


def test_exports(qtbot, host, similarity, tiny_models, tmp_path):
    load(qtbot, host, [similarity], str(tiny_models["llama"]))
    trace = run(qtbot, host, similarity, "one two three four")
    similarity.export_csv(str(tmp_path / "sim.csv"))
    frame = pd.read_csv(tmp_path / "sim.csv", index_col=0)
    assert frame.shape == (trace.num_tokens, trace.num_tokens)
    np.testing.assert_allclose(frame.to_numpy(), similarity.heatmap.matrix, atol=1e-6)
    similarity.export_image(str(tmp_path / "sim.png"))
    similarity.export_image(str(tmp_path / "sim.svg"))
    assert (tmp_path / "sim.png").stat().st_size > 1000 and "<svg" in (tmp_path / "sim.svg").read_text()[:2000]


def test_projection_layers_and_trajectories(qtbot, host, projection, tiny_models, tmp_path):
    load(qtbot, host, [projection], str(tiny_models["llama"]))
    trace = run(qtbot, host, projection, "The quick brown fox jumps over the lazy dog")
    proj = projection.projection
    points = projection.scatter.points()
    assert len(points) == trace.num_tokens
    np.testing.assert_allclose([p.pos().x() for p in points], proj.per_layer[3][:, 0], atol=1e-5)
    assert "PC1" in projection.item.getAxis("bottom").labelText
    projection.slider.setValue(1)
    np.testing.assert_allclose([p.pos().x() for p in projection.scatter.points()], proj.per_layer[1][:, 0], atol=1e-5)
    projection.mode.setCurrentIndex(1)
    x, _y = projection.paths.getData()
    assert len(x) == trace.num_tokens * (trace.num_states + 1)  # each path plus a gap
    np.testing.assert_allclose([p.pos().x() for p in projection.scatter.points()], proj.shared[-1][:, 0], atol=1e-5)
    assert not projection.slider.isEnabled()
    assert sum(item.isVisible() for item in projection.text_items) == trace.num_tokens
    assert projection._tip(0.0, 0.0, 1).startswith(trace.labels()[1])
    projection.export_image(str(tmp_path / "proj.png"))
    assert (tmp_path / "proj.png").stat().st_size > 1000


def test_projection_needs_two_tokens(qtbot, host, projection, tiny_models):
    load(qtbot, host, [projection], str(tiny_models["llama"]))
    run(qtbot, host, projection, "a")
    assert "at least two tokens" in projection.message_text
