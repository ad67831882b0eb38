"""Screen-resolution attention maps, aggregates, per-head statistics and rollout, checked
against direct numpy computations on exact maps (tiny real-architecture models and the
bundled SmolLM2)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from llmviz.core import attention as A
from llmviz.core.errors import Cancelled
from llmviz.core.models import load_model
from llmviz.core.specs import ModelSpec
from llmviz.core.tasks import TaskContext
from llmviz.core.trace import run_trace

TEXT = "The cat sat on the mat because it was tired, and then the dog came in and barked loudly at it."


@pytest.fixture(scope="module")
def traces(tiny_models):
    """Traces of the tiny llama (causal, grouped-query) and bert (bidirectional) models."""
    out = {}
    for name in ("llama", "bert", "gpt2"):
        loaded = load_model(ModelSpec(str(tiny_models[name]), device="cpu"))
        out[name] = run_trace(loaded, TEXT)
    return out


def np_blocks(m: np.ndarray, b: int, how: str) -> np.ndarray:
    """Direct block reduction, one block at a time."""
    rows, cols = math.ceil(m.shape[0] / b), math.ceil(m.shape[1] / b)
    out = np.empty((rows, cols), np.float32)
    for i in range(rows):
        for j in range(cols):
            cell = m[i * b:(i + 1) * b, j * b:(j + 1) * b]
            out[i, j] = cell.max() if how == "max" else cell.mean()
    return out


def np_rollout(layers: list[np.ndarray]) -> np.ndarray:
    """Abnar & Zuidema (2020), written out: mean over heads, + I, renormalise rows, multiply up."""
    t = layers[0].shape[-1]
    result = np.eye(t)
    for maps in layers:
        a = maps.astype(np.float64).mean(axis=0) + np.eye(t)
        a = a / a.sum(axis=-1, keepdims=True)
        result = a @ result
    return result


@pytest.mark.parametrize("name", ["llama", "bert", "gpt2"])
@pytest.mark.parametrize("block,how", [(1, "max"), (3, "max"), (3, "mean"), (5, "mean")])
def test_block_maps_equal_numpy_reduction_of_exact_map(traces, name, block, how):
    cap = traces[name].capture
    exact = A.head_map(cap, 1, 2)
    got = A.attention_blocks(cap, 1, 2, block=block, reduce=how)
    np.testing.assert_allclose(got, np_blocks(exact, block, how), atol=1e-6)


@pytest.mark.parametrize("rows,cols,width", [(7, 7, 7), (9, 4, 11), (16, 10, 16), (3, 1, 20)])
@pytest.mark.parametrize("block,how", [(2, "max"), (3, "max"), (4, "mean"), (5, "mean")])
def test_block_reduce_of_signed_values_with_implicit_zero_columns(rows, cols, width, block, how):
    """Columns beyond the computed ones count as zeros, also where every computed value is negative."""
    import torch

    m = -np.abs(np.random.default_rng(rows * cols).standard_normal((rows, cols))).astype(np.float32)
    m[0, 0] = np.nan
    full = np.zeros((rows, width), np.float32)
    full[:, :cols] = m
    got = A.block_reduce(torch.from_numpy(m), block, how, width=width).numpy()
    np.testing.assert_allclose(got, np_blocks(full, block, how), atol=1e-6)


@pytest.mark.parametrize("source", ["mean", "max"])
def test_aggregates_over_heads(traces, source):
    cap = traces["llama"].capture
    maps = A.layer_maps(cap, 2)
    want = maps.mean(0) if source == "mean" else maps.max(0)
    np.testing.assert_allclose(A.attention_blocks(cap, 2, 0, source), want, atol=1e-6)
    np.testing.assert_allclose(A.attention_blocks(cap, 2, 0, source, block=4, reduce="mean"),
                               np_blocks(want, 4, "mean"), atol=1e-6)


@pytest.mark.parametrize("name", ["llama", "bert"])
def test_hiding_renormalising_and_regions(traces, name):
    trace = traces[name]
    cap = trace.capture
    keep = A.kept_positions(trace.num_tokens, trace.tokens.special, hide_first=True, hide_special=True)
    assert 0 not in keep and not trace.tokens.special[keep].any()
    exact = A.head_map(cap, 0, 1)[np.ix_(keep, keep)]
    renorm = exact / exact.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(A.attention_blocks(cap, 0, 1, keep=keep), exact, atol=1e-6)
    got = A.attention_blocks(cap, 0, 1, keep=keep, renormalise=True)
    np.testing.assert_allclose(got, renorm, atol=1e-6)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)
    region = (3, 11, 2, 9)
    np.testing.assert_allclose(A.attention_blocks(cap, 0, 1, keep=keep, renormalise=True, region=region),
                               renorm[3:11, 2:9], atol=1e-6)
    np.testing.assert_allclose(A.attention_blocks(cap, 0, 1, keep=keep, region=region, block=2, reduce="max"),
                               np_blocks(exact[3:11, 2:9], 2, "max"), atol=1e-6)


def test_many_small_slabs_give_the_same_map(traces, monkeypatch):
    cap = traces["llama"].capture
    whole = A.attention_blocks(cap, 1, 3, source="mean", block=2, reduce="mean")
    monkeypatch.setattr(A, "CHUNK_ELEMENTS", 64)  # a few rows per slab
    np.testing.assert_allclose(A.attention_blocks(cap, 1, 3, source="mean", block=2, reduce="mean"), whole, atol=1e-6)
    np.testing.assert_allclose(A.head_map(cap, 1, 3), A.attention_blocks(cap, 1, 3), atol=1e-6)


def test_the_reused_scratch_buffer_leaks_nothing_between_maps(traces):
    """Slabs are written into one reused buffer: maps of other shapes, sources and models
    computed in between (leaving larger and stale contents behind) change nothing."""
    llama, bert = traces["llama"].capture, traces["bert"].capture
    first = A.attention_blocks(llama, 1, 2, block=3, reduce="max")
    A.scratch(10_000).fill_(float("nan"))  # garbage where the next slab will go
    A.attention_blocks(bert, 0, 1, source="max", block=1)
    A.layer_overview(llama, 0, 4)
    np.testing.assert_array_equal(A.attention_blocks(llama, 1, 2, block=3, reduce="max"), first)
    np.testing.assert_allclose(A.attention_blocks(llama, 1, 2), A.head_map(llama, 1, 2), atol=1e-6)


def test_exact_row_matches_map(traces):
    cap = traces["bert"].capture
    np.testing.assert_allclose(A.exact_row(cap, 1, 0, 5), A.head_map(cap, 1, 0)[5], atol=1e-6)
    np.testing.assert_allclose(A.exact_row(cap, 1, 0, 5, "max"), A.layer_maps(cap, 1).max(0)[5], atol=1e-6)


def test_layer_overview_statistics(traces):
    cap = traces["llama"].capture
    maps = A.layer_maps(cap, 1).astype(np.float64)
    t = cap.num_tokens
    out = A.layer_overview(cap, 1, size=8, reduce="max")
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.nansum(np.where(maps > 0, maps * np.log2(maps), 0.0), axis=-1).mean(-1)
    dist = (maps * np.abs(np.arange(t)[:, None] - np.arange(t)[None, :])).sum(-1).mean(-1)
    np.testing.assert_allclose(out["entropy"], ent, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["distance"], dist, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["first"], maps[..., 0].mean(-1), atol=1e-5)
    block = int(out["block"])
    assert block == math.ceil(t / 8)
    for h in range(cap.num_heads):
        np.testing.assert_allclose(out["thumbs"][h], np_blocks(maps[h].astype(np.float32), block, "max"), atol=1e-6)


@pytest.mark.parametrize("name", ["llama", "bert"])
def test_rollout_equals_direct_numpy_formula(traces, name):
    cap = traces[name].capture
    want = np_rollout([A.layer_maps(cap, layer) for layer in range(cap.num_layers)])
    got = A.rollout(cap)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)  # still a distribution over input tokens
    for q in (0, 4, cap.num_tokens - 1):
        np.testing.assert_allclose(A.rollout_row(cap, q), want[q], atol=1e-5)


def test_rollout_map_has_a_size_limit(traces, monkeypatch):
    monkeypatch.setattr(A, "ROLLOUT_MAP_MAX_TOKENS", 4)
    with pytest.raises(ValueError):
        A.rollout(traces["llama"].capture)
    assert A.rollout_row(traces["llama"].capture, 3).shape == (traces["llama"].num_tokens,)


def test_one_token_gives_a_one_by_one_map(tiny_models):
    loaded = load_model(ModelSpec(str(tiny_models["llama"]), device="cpu"))
    trace = run_trace(loaded, "Hi", max_tokens=1)
    assert trace.num_tokens == 1
    np.testing.assert_allclose(A.attention_blocks(trace.capture, 0, 0, block=1), [[1.0]], atol=1e-6)
    np.testing.assert_allclose(A.rollout(trace.capture), [[1.0]], atol=1e-6)
    out = A.layer_overview(trace.capture, 0, size=48)
    assert out["thumbs"].shape == (trace.capture.num_heads, 1, 1) and np.all(out["entropy"] == 0)


def test_nan_from_the_model_stays_visible(traces):
    cap = traces["llama"].capture
    queries = [q.copy() for q in cap.queries]
    queries[0][1, 4, 0] = np.nan  # one broken query vector
    broken = dataclasses.replace(cap, queries=tuple(queries))
    exact = A.attention_blocks(broken, 0, 1)
    assert np.isnan(exact[4]).all() and np.isfinite(np.delete(exact, 4, axis=0)).all()
    assert np.isnan(A.attention_blocks(broken, 0, 1, block=3, reduce="max")[1]).all()
    assert np.isnan(A.layer_overview(broken, 0, 8)["entropy"][1])


def test_cancel_stops_a_long_computation(traces, monkeypatch):
    ctx = TaskContext()
    ctx.token.cancel()
    monkeypatch.setattr(A, "CHUNK_ELEMENTS", 64)
    with pytest.raises(Cancelled):
        A.attention_blocks(traces["llama"].capture, 0, 0, ctx=ctx)
    with pytest.raises(Cancelled):
        A.rollout(traces["llama"].capture, ctx)


def test_smollm2_block_map_of_a_long_text(smollm2_session):
    """Real weights, grouped-query heads, several slabs: block max equals the exact map's."""
    text = " ".join(f"Sentence number {i} talks about cats, dogs and the weather." for i in range(60))
    trace = smollm2_session.run(text)
    cap = trace.capture
    assert cap.num_tokens > 600
    exact = A.head_map(cap, 7, 4)
    np.testing.assert_allclose(A.attention_blocks(cap, 7, 4, block=16, reduce="max"), np_blocks(exact, 16, "max"), atol=1e-6)
    np.testing.assert_allclose(A.attention_blocks(cap, 7, 4, block=16, reduce="mean"), np_blocks(exact, 16, "mean"), atol=1e-6)
