"""Next-token logits at any position, sampling settings, and the logit lens (Llama and GPT-2 layouts)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from llmviz.core import prediction as pr
from llmviz.core import prediction_jobs as jobs
from llmviz.core import sampling
from llmviz.core.errors import LlmvizError
from llmviz.core.session import Session
from llmviz.core.tasks import TaskContext

from ..sessions import loaded_session

TEXT = "The cat sat on the mat and looked at the dog"


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def decoder(request, tiny_models) -> Session:
    return loaded_session(tiny_models[request.param])


def _hf_distribution(logits: np.ndarray, temperature: float, top_k: int, top_p: float) -> np.ndarray:
    scores = torch.from_numpy(logits.astype(np.float32))[None]
    ids = torch.zeros(1, 1, dtype=torch.long)
    scores = TemperatureLogitsWarper(temperature)(ids, scores)
    if top_k:
        scores = TopKLogitsWarper(top_k)(ids, scores)
    if top_p < 1:
        scores = TopPLogitsWarper(top_p)(ids, scores)
    return torch.softmax(scores.double(), dim=-1)[0].numpy()


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 0, 1.0), (0.7, 0, 1.0), (1.5, 10, 1.0), (1.0, 0, 0.9),
                                                     (0.8, 50, 0.5), (2.0, 3, 0.99)])
def test_sampling_distribution_matches_transformers_warpers(temperature, top_k, top_p):
    logits = np.random.default_rng(7).normal(scale=3.0, size=500)
    ours = sampling.sampling_distribution(logits, temperature, top_k, top_p)
    np.testing.assert_allclose(ours, _hf_distribution(logits, temperature, top_k, top_p), atol=1e-6)
    assert ours.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("settings", [(0.0, 0, 1.0), (1.0, 0, 0.0), (1.0, 1, 1.0), (0.0, 0, 0.0)])
def test_greedy_settings_need_no_division(settings):
    logits = np.array([0.1, 3.0, -2.0, 2.9])
    with np.errstate(all="raise"):  # a division by zero would raise here
        p = sampling.sampling_distribution(logits, *settings)
    assert sampling.is_greedy(*settings)
    np.testing.assert_array_equal(p, [0, 1, 0, 0])


def test_entropy_in_bits():
    assert sampling.entropy_bits(np.full(8, 1 / 8)) == pytest.approx(3.0)
    assert sampling.entropy_bits(np.array([1.0, 0.0])) == 0.0


def test_final_norm_and_head_are_found_through_the_model(tiny_models):
    """The norm is located structurally; the test names the attributes to check the answer."""
    llama = AutoModelForCausalLM.from_pretrained(tiny_models["llama"])
    gpt2 = AutoModelForCausalLM.from_pretrained(tiny_models["gpt2"])
    assert pr.final_norm(llama, 3) is llama.model.norm
    assert pr.final_norm(gpt2, 2) is gpt2.transformer.ln_f
    assert pr.output_head(llama) is llama.lm_head and pr.output_head(gpt2) is gpt2.lm_head


def test_logits_at_every_position_equal_a_full_forward(decoder):
    trace = decoder.run(TEXT)
    with torch.inference_mode():
        full = decoder.loaded.model(torch.as_tensor(trace.tokens.ids)[None]).logits[0].numpy()
    ctx = TaskContext()
    for position in range(trace.num_tokens):
        result = jobs.next_token(decoder, ctx, trace.id, position)
        np.testing.assert_allclose(result.logits, full[position], atol=1e-4)
        assert result.exact and result.top_ids[0] == int(np.argmax(full[position]))
        expected_next = int(trace.tokens.ids[position + 1]) if position + 1 < trace.num_tokens else -1
        assert result.actual_next == expected_next
    last = jobs.next_token(decoder, ctx, trace.id)  # default: the last position
    assert last.position == trace.num_tokens - 1 and last.actual_label == ""


def test_logit_lens_layers_go_through_norm_and_head(decoder):
    trace = decoder.run(TEXT)
    lens = jobs.logit_lens(decoder, TaskContext(), trace.id, start=2, count=5, k=4)
    model = decoder.loaded.model
    norm, head = pr.final_norm(model, decoder.info.num_layers), model.get_output_embeddings()
    assert list(lens.positions) == [2, 3, 4, 5, 6] and lens.top_ids.shape == (decoder.info.num_layers + 1, 5, 4)
    with torch.inference_mode():
        for layer in range(decoder.info.num_layers):  # below the last layer: norm then head
            h = torch.from_numpy(trace.hidden_states[layer, 2:7])
            probs = torch.softmax(head(norm(h)), -1)
            np.testing.assert_allclose(lens.top_probs[layer], probs.topk(4, -1).values.numpy(), atol=1e-5)
            actual = probs[torch.arange(5), torch.as_tensor(trace.tokens.ids[3:8])].numpy()
            np.testing.assert_allclose(lens.actual_prob[layer], actual, atol=1e-6)
        full = torch.softmax(model(torch.as_tensor(trace.tokens.ids)[None]).logits[0, 2:7], -1)
    np.testing.assert_allclose(lens.top_probs[-1], full.topk(4, -1).values.numpy(), atol=1e-5)  # the model's own output
    assert len(lens.top_labels) == decoder.info.num_layers + 1 and len(lens.top_labels[0][0]) == 4


def test_lens_window_at_the_end_of_the_text(decoder):
    trace = decoder.run("one two three")
    lens = jobs.logit_lens(decoder, TaskContext(), trace.id, start=100, count=24)
    assert list(lens.positions) == [trace.num_tokens - 1]
    assert lens.actual_next[-1] == -1 and np.isnan(lens.actual_prob[:, -1]).all()


def test_real_smollm2_predicts_and_lens_agrees(smollm2_session):
    trace = smollm2_session.run("The capital of France is Paris. The capital of Germany is")
    result = jobs.next_token(smollm2_session, TaskContext(), trace.id)
    np.testing.assert_allclose(result.logits, trace.last_logits, atol=1e-4)
    assert result.exact and result.top_labels[0] == "␣Berlin"
    lens = jobs.logit_lens(smollm2_session, TaskContext(), trace.id, start=trace.num_tokens - 3, count=3)
    assert lens.top_labels[-1][-1][0] == "␣Berlin"
    assert lens.top_probs[-1, -1, 0] > lens.top_probs[10, -1, 0]  # the last layer is surer than layer 10


def test_encoder_models_do_not_predict(minilm_session):
    trace = minilm_session.run("the cat sat")
    with pytest.raises(LlmvizError, match="encoder-only"):
        jobs.next_token(minilm_session, TaskContext(), trace.id)
    with pytest.raises(LlmvizError, match="encoder-only"):
        jobs.logit_lens(minilm_session, TaskContext(), trace.id)
