"""Integrated gradients refined until its completeness gap is within a limit."""

from __future__ import annotations

import pytest

from llmviz.core import explain_jobs as J
from llmviz.core.errors import LlmvizError
from llmviz.core.tasks import TaskContext

from .conftest import EXPLAIN_TEXT as TEXT


@pytest.mark.slow
def test_a_rough_path_is_refined_until_the_gap_is_within_the_limit(smollm2_session):
    """On this text 64 Gauss–Legendre nodes leave a gap of a few per cent; 128 close it."""
    trace = smollm2_session.run("The capital of France is Paris. The capital of Italy is")
    seen = []
    result = J.explain(smollm2_session, TaskContext(publish=seen.append), trace.id, methods=["ig"], steps=64,
                       faithfulness=False, refine_gap=0.01)
    first_64 = next(r for r in seen if r.ig_steps == 64)
    assert first_64.completeness_gap > 0.01
    assert result.ig_steps == 128 and result.completeness_gap <= 0.01
    shown = [r.ig_steps for r in seen]
    assert sorted(set(shown)) == [J.COARSE_STEPS, 64, 128] and shown == sorted(shown)  # each rule as it completes
    assert any("refined from 64 steps" in note and "within 1.0%" in note for note in result.notes)


def test_a_gap_already_within_the_limit_is_not_refined(llama):
    trace = llama.run(TEXT)
    result = J.explain(llama, TaskContext(), trace.id, methods=["ig"], steps=64, faithfulness=False,
                       refine_gap=0.01)
    assert result.ig_steps == 64 and result.completeness_gap <= 0.01
    assert any("at 64 steps, within 1.0%" in note for note in result.notes)


def test_refining_stops_at_the_most_steps(llama):
    trace = llama.run(TEXT)
    result = J.explain(llama, TaskContext(), trace.id, methods=["ig"], steps=512, faithfulness=False,
                       refine_gap=1e-12)
    assert result.ig_steps == J.MAX_STEPS
    assert result.completeness_gap > 1e-12  # float32 gradients leave more than that
    assert any(f"{J.MAX_STEPS} steps is the most it refines to" in note for note in result.notes)


def test_steps_that_are_not_a_power_of_two_refine_up_to_the_most(llama):
    trace = llama.run(TEXT)
    result = J.explain(llama, TaskContext(), trace.id, methods=["ig"], steps=600, faithfulness=False,
                       refine_gap=1e-12)
    assert result.ig_steps == J.MAX_STEPS


def test_the_other_methods_are_shown_before_refining(llama):
    trace = llama.run(TEXT)
    seen = []
    J.explain(llama, TaskContext(publish=seen.append), trace.id, methods=["ig", "occlusion"], steps=2,
              faithfulness=False, refine_gap=1e-12)
    first_refined = next(i for i, r in enumerate(seen) if r.ig_steps > 2)
    assert "occlusion" in seen[first_refined - 1].attributions


def test_without_a_limit_the_steps_are_kept(llama):
    trace = llama.run(TEXT)
    result = J.explain(llama, TaskContext(), trace.id, methods=["ig"], steps=8, faithfulness=False)
    assert result.ig_steps == 8
    assert not any("completeness gap" in note or "refined" in note for note in result.notes)


@pytest.mark.parametrize("limit", [-0.1, 1.0, 5.0])
def test_a_limit_outside_zero_to_one_is_refused(llama, limit):
    trace = llama.run(TEXT)
    with pytest.raises(LlmvizError, match="fraction between 0"):
        J.explain(llama, TaskContext(), trace.id, methods=["ig"], steps=8, faithfulness=False, refine_gap=limit)
