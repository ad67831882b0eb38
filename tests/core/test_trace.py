"""Running text through a model: tokens, hidden states, logits, truncation, odd input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmviz.core.models import load_model
from llmviz.core.specs import ModelSpec
from llmviz.core.trace import run_trace


@pytest.fixture(scope="module")
def llama(tiny_models):
    return load_model(ModelSpec(str(tiny_models["llama"]), device="cpu"))


def test_trace_matches_a_plain_forward(llama):
    trace = run_trace(llama, "The cat sat on the mat")
    ids = torch.as_tensor(trace.tokens.ids)[None]
    with torch.inference_mode():
        out = llama.model(input_ids=ids, output_hidden_states=True)
    assert trace.hidden_states.shape == (4, len(trace.tokens), 32)
    np.testing.assert_allclose(trace.hidden_states[-1], out.hidden_states[-1][0].numpy(), atol=1e-5)
    np.testing.assert_allclose(trace.last_logits, out.logits[0, -1].numpy(), atol=1e-4)
    assert trace.labels()[:3] == ["The", "␣cat", "␣sat"]
    assert all(v >= 0 for v in trace.timings.values())


def test_labels_are_made_on_the_worker_with_the_trace(llama):
    """run_trace (worker) makes the display labels, so the GUI thread's first draw does not."""
    trace = run_trace(llama, "Hello, world! 世界 🤖")
    assert "token_labels" in vars(trace.trace)  # computed already, not on first access
    assert list(trace.token_labels) == trace.tokens.labels(trace.text) == trace.labels()
    assert trace.labels() is not trace.labels()  # callers get their own list


def test_token_spans_cover_the_text(llama):
    text = "Hello, world! 世界 مرحبا 🤖"
    trace = run_trace(llama, text)
    covered = "".join(text[s:e] for s, e in zip(trace.tokens.starts, trace.tokens.ends) if e > s)
    assert covered.replace(" ", "") .startswith("Hello,world!")
    assert trace.num_tokens > 8 and trace.capture is not None


@pytest.mark.parametrize("text", ["", "   \n\t  "])
def test_empty_and_whitespace_text(llama, text):
    trace = run_trace(llama, text)
    if text == "":
        assert trace.is_empty and trace.capture is None and trace.hidden_states.shape[1] == 0
    else:
        assert trace.num_tokens >= 1  # whitespace is real tokens for a BPE model


def test_text_longer_than_the_context_is_truncated(llama):
    trace = run_trace(llama, "word " * 200)
    assert trace.truncated_from is not None and trace.truncated_from > 64
    assert trace.num_tokens == 64
    assert trace.capture.num_tokens == 64


def test_encoder_trace_has_no_logits(tiny_models):
    bert = load_model(ModelSpec(str(tiny_models["bert"]), device="cpu"))
    trace = run_trace(bert, "the cat sat")
    assert trace.last_logits is None
    assert trace.labels()[0] == "[CLS]" and trace.labels()[-1] == "[SEP]"
    assert bool(trace.tokens.special[0]) and not bool(trace.tokens.special[1])


def test_hidden_states_are_freed_as_they_are_copied(llama, monkeypatch):
    """The model's hidden-state tensors go as the trace copies them into its array, so a
    long text never holds them twice (585 MB each at T = 8192 on SmolLM2).  ModelOutput
    keeps items apart from attributes: assigning the attribute None once kept them all."""
    import weakref

    from llmviz.core import trace as trace_module

    refs: list[weakref.ref] = []
    handle = llama.model.register_forward_hook(
        lambda _m, _a, out: refs.extend(weakref.ref(h) for h in out.hidden_states))
    alive: list[int] = []
    monkeypatch.setattr(trace_module, "TRIM_TOKENS", 1)  # trim (and so look) during the copy too
    monkeypatch.setattr(trace_module, "release_freed_memory", lambda: alive.append(sum(r() is not None for r in refs)))
    try:
        trace = run_trace(llama, "The cat sat on the mat")
    finally:
        handle.remove()
    assert len(refs) == trace.hidden_states.shape[0] == 4  # embeddings + 3 blocks
    assert len(alive) == 3 + 1 + 1  # before each block, after the 4th copied layer, at the end
    assert alive == [0] * 5
