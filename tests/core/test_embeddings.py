"""Token/sentence similarity and PCA projections against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from llmviz.core import bundled
from llmviz.core import embeddings as em
from llmviz.core import embeddings_jobs as ej
from llmviz.core.embeddings_results import layer_name
from llmviz.core.errors import InputError, LlmvizError
from llmviz.core.session import Session
from llmviz.core.tasks import TaskContext

from ..sessions import loaded_session


@pytest.fixture(scope="module")
def llama(tiny_models) -> Session:
    return loaded_session(tiny_models["llama"])


def test_cosine_map_is_the_notebooks_cosine_similarity(minilm_session):
    trace = minilm_session.run("The cat sat on the mat")
    for layer in (0, 3, 6):
        h = torch.from_numpy(trace.hidden_states[layer])
        expected = torch.nn.functional.cosine_similarity(h.unsqueeze(1), h.unsqueeze(0), dim=-1).numpy()
        sim = em.cosine_map(trace.hidden_states[layer])
        assert sim.block == 1 and sim.matrix.shape == (trace.num_tokens,) * 2
        np.testing.assert_allclose(sim.matrix, expected, atol=1e-5)


def test_centering_subtracts_the_mean_direction():
    rng = np.random.default_rng(0)
    common = rng.normal(size=64) * 20
    vectors = common + rng.normal(size=(12, 64))  # strongly anisotropic
    raw = em.cosine_map(vectors).matrix
    centred = em.cosine_map(vectors, center=True).matrix
    off = ~np.eye(12, dtype=bool)
    assert raw[off].mean() > 0.9 and abs(centred[off].mean()) < 0.15
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    c = units - units.mean(axis=0)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    np.testing.assert_allclose(centred, c @ c.T, atol=1e-5)
    # one enormous vector does not become "the mean" (decoders' first token)
    vectors[0] *= 1e4
    assert np.isfinite(em.cosine_map(vectors, center=True).matrix).all()
    ratio = np.linalg.norm(vectors[0]) / np.median(np.linalg.norm(vectors, axis=1))
    assert em.dominant_token(vectors) == (0, pytest.approx(ratio, rel=1e-4))


def test_long_inputs_give_exact_block_means():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(50, 16)).astype(np.float32)
    exact = em.cosine_map(vectors).matrix
    sim = em.cosine_map(vectors, max_cells=10)
    assert sim.block == 5 and sim.matrix.shape == (10, 10)
    expected = exact.reshape(10, 5, 10, 5).mean(axis=(1, 3))
    np.testing.assert_allclose(sim.matrix, expected, atol=1e-5)
    assert list(sim.row_index[:3]) == [0, 5, 10]


def test_cross_similarity_shapes_and_errors():
    a, b = np.eye(3, 4), np.eye(2, 4)
    sim = em.cosine_map(a, b)
    np.testing.assert_allclose(sim.matrix, np.eye(3, 2), atol=1e-6)
    with pytest.raises(InputError):
        em.cosine_map(np.ones((2, 3)), np.ones((2, 4)))


def _sentence_transformers_embedding(text: str) -> np.ndarray:
    """all-MiniLM-L6-v2 as its model card says to use it with transformers: mean pooling, normalize."""
    folder = bundled.model_folder("bundled:minilm")
    tok, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder)
    enc = tok([text], return_tensors="pt")
    with torch.inference_mode():
        out = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    pooled = (out * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=1)[0].numpy()


def test_two_texts_sentence_similarity_matches_minilm_usage(minilm_session):
    trace = minilm_session.run("The cat sat on the mat")
    ctx = TaskContext()
    near = ej.compare_texts(minilm_session, ctx, trace.id, "A kitten rested on the rug")
    far = ej.compare_texts(minilm_session, ctx, trace.id, "Quarterly profits fell sharply")
    expected = float(_sentence_transformers_embedding("The cat sat on the mat")
                     @ _sentence_transformers_embedding("A kitten rested on the rug"))
    assert near.sentence[-1] == pytest.approx(expected, abs=1e-4)
    assert near.sentence[-1] > far.sentence[-1] + 0.3
    assert near.sentence.shape == (7,)
    assert minilm_session.trace is trace  # the second text did not replace the trace
    with pytest.raises(InputError):
        ej.compare_texts(minilm_session, ctx, trace.id, "   ")
    with pytest.raises(LlmvizError, match="no longer current"):
        ej.compare_texts(minilm_session, ctx, trace.id + 1000, "x")


def test_projection_matches_an_svd(llama):
    trace = llama.run("The quick brown fox jumps over the lazy dog, " * 4)  # more tokens than PCA oversamples
    proj = ej.projection(llama, TaskContext(), trace.id, unit_length=False)
    layers, t = trace.hidden_states.shape[:2]
    assert proj.per_layer.shape == (layers, t, 2) and proj.shared.shape == (layers, t, 2)
    for layer in range(layers):
        x = trace.hidden_states[layer].astype(np.float64)
        x = x - x.mean(axis=0)
        _u, s, vt = np.linalg.svd(x, full_matrices=False)
        expected = x @ vt[:2].T
        ours = proj.per_layer[layer]
        for axis in range(2):  # PCA axes are defined up to sign
            sign = np.sign(np.dot(ours[:, axis], expected[:, axis]))
            np.testing.assert_allclose(ours[:, axis] * sign, expected[:, axis], atol=1e-3 * max(1.0, np.abs(expected).max()))
        np.testing.assert_allclose(proj.per_layer_explained[layer], s[:2] ** 2 / (s ** 2).sum(), atol=1e-4)
    again = ej.projection(llama, TaskContext(), trace.id, unit_length=False)
    np.testing.assert_array_equal(proj.per_layer, again.per_layer)  # deterministic despite randomized PCA


def test_projection_unit_length_and_too_short(llama):
    trace = llama.run("one two three four five")
    proj = ej.projection(llama, TaskContext(), trace.id, unit_length=True)
    assert proj.unit_length and np.abs(proj.per_layer).max() <= 2.0  # unit vectors stay within the unit ball
    assert proj.shared_fit_rows == trace.hidden_states.shape[0] * trace.num_tokens
    short = llama.run("a")
    assert short.num_tokens == 1
    with pytest.raises(LlmvizError, match="at least two tokens"):
        ej.projection(llama, TaskContext(), short.id)


def test_layer_names():
    assert layer_name(0, 30) == "embeddings"
    assert layer_name(30, 30) == "layer 30 (last)"
    assert layer_name(5, 30) == "layer 5"


def _torch_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    return torch.nn.functional.cosine_similarity(ta.unsqueeze(1), tb.unsqueeze(0), dim=-1).numpy()


def test_map_jobs_compute_from_the_engines_hidden_states(minilm_session):
    """The similarity view's maps, now jobs: the token map and the cross map of two texts at a
    layer equal torch's cosine similarity of the hidden states (the second text run separately)."""
    trace = minilm_session.run("The cat sat on the mat")
    ctx = TaskContext()
    sim = ej.similarity_map(minilm_session, ctx, trace.id, layer=3)
    assert sim.layer == 3 and sim.trace_id == trace.id and sim.block == 1
    np.testing.assert_allclose(sim.matrix, _torch_cosine(trace.hidden_states[3], trace.hidden_states[3]), atol=1e-5)
    with pytest.raises(LlmvizError, match="Compare a second text first"):
        ej.cross_map(minilm_session, ctx, trace.id, layer=6)
    ej.compare_texts(minilm_session, ctx, trace.id, "A kitten rested on the rug")
    other = Session()
    other.loaded = minilm_session.loaded  # the same weights, a separate run of the second text
    second = other.run("A kitten rested on the rug")
    cross = ej.cross_map(minilm_session, ctx, trace.id, layer=6)
    np.testing.assert_allclose(cross.matrix, _torch_cosine(trace.hidden_states[6], second.hidden_states[6]), atol=1e-5)
    assert minilm_session.trace is trace
    big = ej.similarity_map(minilm_session, ctx, trace.id, layer=99)  # clamped to the last layer
    assert big.layer == 6
