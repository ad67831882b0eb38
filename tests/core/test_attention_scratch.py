"""Attention from scratch: the toy walk-through is the notebook's SimpleAttention, and the
real-head walk-through ends in exactly the head view's map (and the model's own output)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmviz.core import attention_jobs, scratch
from llmviz.core.errors import InputError, LlmvizError
from llmviz.core.tasks import TaskContext

TEXT = "The quick brown fox jumps over the lazy dog."


def test_toy_steps_are_the_modules_own_computation():
    walk = scratch.toy_walkthrough(None, TaskContext(), embed_dim=16, seq_len=7, seed=3)
    module, x = scratch.toy_module(16, 7, 3)
    with torch.inference_mode():
        output, weights = module(x)
    np.testing.assert_allclose(walk.step("weights").matrix, weights[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(walk.step("output").matrix, output[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(walk.step("x").matrix, x[0].numpy())
    np.testing.assert_allclose(walk.step("Q").matrix, module.query(x)[0].detach().numpy(), atol=1e-6)
    assert walk.step("scores").matrix.shape == (7, 7) and walk.step("V").matrix.shape == (7, 16)
    np.testing.assert_allclose(walk.step("weights").matrix.sum(-1), 1.0, atol=1e-6)


def test_toy_depends_on_the_seed_only():
    a = scratch.toy_walkthrough(None, TaskContext(), 8, 5, seed=1)
    b = scratch.toy_walkthrough(None, TaskContext(), 8, 5, seed=1)
    c = scratch.toy_walkthrough(None, TaskContext(), 8, 5, seed=2)
    np.testing.assert_array_equal(a.step("output").matrix, b.step("output").matrix)
    assert not np.allclose(a.step("output").matrix, c.step("output").matrix)


@pytest.mark.parametrize("dim,length", [(0, 5), (8, 0), (scratch.TOY_MAX_DIM + 1, 5), (8, scratch.TOY_MAX_LEN + 1)])
def test_toy_rejects_bad_sizes(dim, length):
    with pytest.raises(InputError):
        scratch.toy_walkthrough(None, TaskContext(), dim, length, 0)


@pytest.mark.parametrize("fixture,layer,head", [("smollm2_session", 4, 7), ("minilm_session", 2, 5)])
def test_real_head_ends_in_the_head_views_map(request, fixture, layer, head):
    session = request.getfixturevalue(fixture)
    trace = session.run(TEXT)
    walk = scratch.head_walkthrough(session, TaskContext(), trace.id, layer, head)
    shown = attention_jobs.attention_map(session, TaskContext(), trace.id, "head", layer, head, max_cells=4096)
    assert shown.block == 1 and shown.reduce == "exact"
    np.testing.assert_allclose(walk.step("weights").matrix, shown.matrix, atol=1e-6)
    # The walk-through's output is what the model's own sdpa computed for this head.
    values = scratch.head_values(session, trace.tokens.ids, layer)
    assert values is not None
    np.testing.assert_allclose(walk.step("output").matrix, values[1][:, head].numpy(), atol=1e-5)
    names = [s.name for s in walk.steps]
    assert names == ["Q", "K", "V", "scores", "masked", "weights", "output"]
    masked = walk.step("masked").matrix
    if session.info.is_decoder:
        assert np.isneginf(masked[0, 1:]).all() and np.isfinite(np.tril(masked)).all()
    else:
        assert np.isfinite(masked).all()
    assert session.loaded.model.config._attn_implementation == "llmviz_capture"  # switched back


def test_real_head_refuses_long_texts_and_stale_traces(smollm2_session, monkeypatch):
    trace = smollm2_session.run(TEXT)
    monkeypatch.setattr(scratch, "HEAD_WALK_MAX_TOKENS", 4)
    with pytest.raises(LlmvizError, match="up to 4"):
        scratch.head_walkthrough(smollm2_session, TaskContext(), trace.id, 0, 0)
    with pytest.raises(LlmvizError):
        scratch.head_walkthrough(smollm2_session, TaskContext(), trace.id + 1000, 0, 0)


def test_real_head_clamps_an_out_of_range_selection(minilm_session):
    trace = minilm_session.run(TEXT)
    walk = scratch.head_walkthrough(minilm_session, TaskContext(), trace.id, 29, 8)
    assert (walk.layer, walk.head) == (5, 8)
