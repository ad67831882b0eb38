"""The attention jobs the worker runs: selection clamping, caching, stale traces, models
without capture, hiding everything, rollout limits and rows."""

from __future__ import annotations

import numpy as np
import pytest

from llmviz.core import attention as A
from llmviz.core import attention_jobs as J
from llmviz.core.errors import LlmvizError
from llmviz.core.session import Session
from llmviz.core.specs import ModelSpec
from llmviz.core.tasks import TaskContext

from ..sessions import loaded_session

TEXT = "Attention is all you need, they said, and then everyone needed more attention."


@pytest.fixture(scope="module")
def llama(tiny_models):
    return loaded_session(tiny_models["llama"])


def test_out_of_range_selection_is_clamped(llama):
    trace = llama.run(TEXT)
    cap = trace.capture
    got = J.attention_map(llama, TaskContext(), trace.id, "head", layer=29, head=8)
    assert (got.layer, got.head) == (cap.num_layers - 1, cap.num_heads - 1)
    np.testing.assert_allclose(got.matrix, A.head_map(cap, cap.num_layers - 1, cap.num_heads - 1), atol=1e-6)
    assert got.block == 1 and got.reduce == "exact" and got.is_full


def test_screen_resolution_and_zoom_regions(llama):
    trace = llama.run(TEXT)
    t = trace.num_tokens
    coarse = J.attention_map(llama, TaskContext(), trace.id, "mean", 1, 0, reduce="mean", max_cells=5)
    assert coarse.block == -(-t // 5) and coarse.reduce == "mean" and max(coarse.matrix.shape) <= 5
    zoom = J.attention_map(llama, TaskContext(), trace.id, "mean", 1, 0, max_cells=5, region=(2, 6, 1, 4))
    assert zoom.block == 1 and zoom.region == (2, 6, 1, 4)
    np.testing.assert_allclose(zoom.matrix, A.layer_maps(trace.capture, 1).mean(0)[2:6, 1:4], atol=1e-6)


def test_results_are_cached_per_trace(llama):
    trace = llama.run(TEXT)
    first = J.attention_map(llama, TaskContext(), trace.id, "head", 0, 1)
    assert J.attention_map(llama, TaskContext(), trace.id, "head", 0, 1) is first
    again = llama.run(TEXT)
    assert J.attention_map(llama, TaskContext(), again.id, "head", 0, 1) is not first


def test_stale_trace_is_an_error(llama):
    trace = llama.run(TEXT)
    llama.run(TEXT + " more")
    with pytest.raises(LlmvizError, match="no longer current"):
        J.attention_map(llama, TaskContext(), trace.id)


def test_hiding_every_token_says_so(llama):
    trace = llama.run("Hi", max_tokens=1)
    with pytest.raises(LlmvizError, match="no tokens"):
        J.attention_map(llama, TaskContext(), trace.id, hide_first=True)


def test_rows_with_hidden_sink_and_renormalisation(llama):
    trace = llama.run(TEXT)
    row = J.attention_row(llama, TaskContext(), trace.id, 7, "head", 2, 3, hide_first=True, renormalise=True)
    exact = A.head_map(trace.capture, 2, 3)[7, 1:]
    np.testing.assert_allclose(row.values, exact / exact.sum(), atol=1e-6)
    assert row.positions[0] == 1 and row.query == 7
    with pytest.raises(LlmvizError):
        J.attention_row(llama, TaskContext(), trace.id, trace.num_tokens, "head", 0, 0)


def test_rollout_map_and_rows(llama, monkeypatch):
    trace = llama.run(TEXT)
    full = A.rollout(trace.capture)
    shown = J.attention_map(llama, TaskContext(), trace.id, "rollout", max_cells=4096)
    np.testing.assert_allclose(shown.matrix, full, atol=1e-6)
    row = J.attention_row(llama, TaskContext(), trace.id, 5, "rollout")
    np.testing.assert_allclose(row.values, full[5], atol=1e-6)
    monkeypatch.setattr(A, "ROLLOUT_MAP_MAX_TOKENS", 4)
    long = llama.run(TEXT + " again")
    with pytest.raises(LlmvizError, match="per-token rollout"):
        J.attention_map(llama, TaskContext(), long.id, "rollout")
    row = J.attention_row(llama, TaskContext(), long.id, 5, "rollout")  # works at any length
    np.testing.assert_allclose(row.values.sum(), 1.0, atol=1e-5)


def test_overview_layer(llama):
    trace = llama.run(TEXT)
    out = J.overview_layer(llama, TaskContext(), trace.id, 1, size=8)
    assert out.thumbs.shape[0] == trace.capture.num_heads and out.layer == 1
    assert J.overview_layer(llama, TaskContext(), trace.id, 1, size=8) is out
    with pytest.raises(LlmvizError):
        J.overview_layer(llama, TaskContext(), trace.id, 99)


def test_model_without_capture_says_so(mamba_folder):
    session = Session()
    session.load(ModelSpec(str(mamba_folder), device="cpu"))
    trace = session.run(TEXT)
    assert trace.capture is None
    with pytest.raises(LlmvizError, match="attention"):
        J.attention_map(session, TaskContext(), trace.id)


def test_one_head_is_computed_on_one_thread_and_the_pool_is_restored(llama, monkeypatch):
    """A head's map runs single-threaded (see llmviz.core.threads); aggregates and the forward keep the pool."""
    import torch

    seen: list[tuple[str, int]] = []
    real = A.attention_blocks

    def recording(cap, layer, head, source="head", **kwargs):
        seen.append((source, torch.get_num_threads()))
        return real(cap, layer, head, source, **kwargs)

    monkeypatch.setattr(A, "attention_blocks", recording)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        trace = llama.run(TEXT)
        head = J.attention_map(llama, TaskContext(), trace.id, "head", layer=1, head=2)
        np.testing.assert_allclose(head.matrix, A.head_map(trace.capture, 1, 2), atol=1e-6)
        J.attention_map(llama, TaskContext(), trace.id, "mean", layer=1)
        assert seen == [("head", 1), ("mean", 2)]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_torch_threads_restores_the_count_after_an_error():
    import torch

    from llmviz.core.threads import torch_threads

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with torch_threads(1 if before > 1 else 2):
            assert torch.get_num_threads() == (1 if before > 1 else 2)
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def _previous_jobs(session):
    """Every job kind the attention views (and others on the same thread) run, by name."""
    from llmviz.core import scratch

    ctx = TaskContext()

    def tid() -> int:
        return session.require_trace().id

    return {
        "run_text": lambda: session.run(TEXT),
        "head map": lambda: J.attention_map(session, ctx, tid(), "head", 1, 2, max_cells=9),
        "mean map": lambda: J.attention_map(session, ctx, tid(), "mean", 0, 0, max_cells=9),
        "max map": lambda: J.attention_map(session, ctx, tid(), "max", 2, 0, max_cells=9),
        "rollout map": lambda: J.attention_map(session, ctx, tid(), "rollout", max_cells=9),
        "prefetch": lambda: J.prefetch_maps(session, ctx, tid(), [(0, 1), (2, 3)], max_cells=9),
        "row": lambda: J.attention_row(session, ctx, tid(), 4, "max", 1, 0),
        "rollout row": lambda: J.attention_row(session, ctx, tid(), 4, "rollout"),
        "overview": lambda: J.overview_layer(session, ctx, tid(), 1, size=8),
        "head walk-through": lambda: scratch.head_walkthrough(session, ctx, tid(), 1, 1),
        "toy walk-through": lambda: scratch.toy_walkthrough(session, ctx, 8, 6, 0),
    }


@pytest.mark.parametrize("engine_policy", [False, True], ids=["jobs as called", "every job in inference mode"])
def test_every_map_kind_after_every_other_job_kind(llama, engine_policy):
    """The per-thread scratch buffer may be (re)allocated by any job, inside torch.inference_mode()
    (overview_layer) or not; every map kind must work after it, in or out of inference mode.
    (A buffer grown under inference mode broke every later map: 'Inplace update to inference
    tensor outside InferenceMode'.)"""
    import torch

    llama.run(TEXT)
    failures = []
    for name, job in _previous_jobs(llama).items():
        for source in ("head", "mean", "max", "rollout"):
            A._scratch.buf = None  # the previous job allocates it afresh
            with torch.inference_mode() if engine_policy else torch.inference_mode(False):
                job()
            trace = llama.require_trace()
            llama.extras.pop("attention", None)  # no cached result: every map is computed
            try:
                out = J.attention_map(llama, TaskContext(), trace.id, source, 2, 3, max_cells=5)
                row = J.attention_row(llama, TaskContext(), trace.id, 3, source, 2, 3)
            except RuntimeError as exc:
                failures.append(f"{source} after {name}: {exc}")
                continue
            assert np.isfinite(out.matrix).all() and np.isfinite(row.values).all()
            if source != "max":  # a max over heads is not a distribution
                assert abs(float(row.values.sum()) - 1.0) < 1e-4
    assert not failures, "\n".join(failures)
