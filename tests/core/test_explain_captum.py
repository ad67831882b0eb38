"""llmviz's integrated gradients against captum's, PyTorch's own attribution library.

llmviz integrates itself (batches with progress and cancel, a coarse picture first, inputs-only
backward); captum is the independent reference.  Both use the Gauss–Legendre rule, so with the
same baseline and step count they must give the same attributions and the same gap.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, LayerIntegratedGradients

from llmviz.core import explain_jobs as J
from llmviz.core.session import Session
from llmviz.core.tasks import TaskContext

from .conftest import EXPLAIN_TEXT as TEXT


def _target_log_prob(model: torch.nn.Module, token: int):
    """What a captum user writes: the target's log-probability after the last position."""
    def forward(input_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        logits = model(input_ids=input_ids, inputs_embeds=inputs_embeds).logits[:, -1].float()
        return torch.log_softmax(logits, -1)[:, token]
    return forward


def _pad_id(session: Session) -> int:
    tok = session.require_model().tokenizer
    return next(v for v in (tok.pad_token_id, tok.unk_token_id, tok.eos_token_id) if v is not None)


def _captum_with_pad_baseline(session: Session, ids: np.ndarray, token: int, steps: int) -> tuple[np.ndarray, float]:
    """captum's LayerIntegratedGradients on the embeddings, the pad token everywhere but the first."""
    model = session.require_model().model
    x = torch.as_tensor(ids)[None]
    base = torch.full_like(x, _pad_id(session))
    base[0, 0] = x[0, 0]
    lig = LayerIntegratedGradients(_target_log_prob(model, token), model.get_input_embeddings())
    attr, delta = lig.attribute(x, baselines=base, n_steps=steps, internal_batch_size=8,
                                return_convergence_delta=True)
    return attr.sum(-1)[0].double().numpy(), float(delta)


@pytest.mark.parametrize("steps", [8, 32])
def test_integrated_gradients_equal_captums(decoder, steps):
    trace = decoder.run(TEXT)
    ours = J.explain(decoder, TaskContext(), trace.id, methods=["ig"], steps=steps, faithfulness=False)
    theirs, delta = _captum_with_pad_baseline(decoder, trace.tokens.ids, ours.target.token_id, steps)
    scale = np.abs(theirs).max()
    np.testing.assert_allclose(ours.attributions["ig"], theirs, rtol=0, atol=1e-4 * scale)
    change = ours.score - ours.baseline_score
    assert ours.completeness_gap == pytest.approx(abs(delta) / abs(change), abs=1e-4)


def test_zero_baseline_equals_captums_on_the_embeddings(decoder):
    """The 'zero' baseline has no token id, so captum integrates over the embeddings themselves."""
    trace = decoder.run(TEXT)
    ours = J.explain(decoder, TaskContext(), trace.id, methods=["ig"], steps=16, baseline="zero", faithfulness=False)
    model = decoder.require_model().model
    with torch.no_grad():
        x = model.get_input_embeddings()(torch.as_tensor(trace.tokens.ids)[None]).float()
    base = torch.zeros_like(x)
    base[0, 0] = x[0, 0]  # a decoder's first token stays (the attention sink is part of the empty input)
    forward = _target_log_prob(model, ours.target.token_id)
    ig = IntegratedGradients(lambda e: forward(inputs_embeds=e))
    theirs = ig.attribute(x, baselines=base, n_steps=16, internal_batch_size=8).sum(-1)[0].double().numpy()
    np.testing.assert_allclose(ours.attributions["ig"], theirs, rtol=0, atol=1e-4 * np.abs(theirs).max())


@pytest.mark.slow
def test_integrated_gradients_equal_captums_on_smollm2(smollm2_session: Session):
    trace = smollm2_session.run("The capital of France is Paris. The capital of Italy is")
    ours = J.explain(smollm2_session, TaskContext(), trace.id, methods=["ig"], steps=16, faithfulness=False)
    theirs, _delta = _captum_with_pad_baseline(smollm2_session, trace.tokens.ids, ours.target.token_id, 16)
    np.testing.assert_allclose(ours.attributions["ig"], theirs, rtol=0, atol=1e-4 * np.abs(theirs).max())
