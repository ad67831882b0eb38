"""Step-by-step generation: same tokens as model.generate, seeds, stops, cancel, chat, attention rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from llmviz.core import generation_jobs as gen
from llmviz.core.errors import Cancelled, InputError, LlmvizError
from llmviz.core.session import Session
from llmviz.core.tasks import TaskContext

from ..sessions import loaded_session

PROMPT = "The cat sat on the mat and"


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def decoder(request, tiny_models) -> Session:
    return loaded_session(tiny_models[request.param])


def _reference(session: Session, text: str, n: int, **kwargs) -> list[int]:
    ids = torch.tensor([session.loaded.tokenizer(text)["input_ids"]])
    with torch.inference_mode():
        out = session.loaded.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                                            min_new_tokens=n, do_sample=False, **kwargs)
    return out[0, ids.shape[1]:].tolist()


def test_greedy_steps_equal_model_generate(decoder):
    steps = gen.generate(decoder, TaskContext(), PROMPT, max_new_tokens=12, stop_at_eos=False)
    assert [s.token_id for s in steps] == _reference(decoder, PROMPT, 12)
    assert [s.step for s in steps] == list(range(12)) and steps[-1].finished == "max_tokens"
    assert steps[-1].text == decoder.loaded.tokenizer.decode([s.token_id for s in steps], skip_special_tokens=True)
    assert all(0 < s.prob <= 1 and s.sample_prob == 1.0 and s.entropy_bits >= 0 and s.latency_s > 0 for s in steps)
    assert [s.context_len for s in steps] == [steps[0].prompt_tokens + i for i in range(12)]
    assert steps[0].prompt_pieces and steps[0].prompt_text == PROMPT and not steps[1].prompt_pieces


def test_step_probabilities_are_the_models(decoder):
    steps = gen.generate(decoder, TaskContext(), PROMPT, max_new_tokens=3, stop_at_eos=False)
    ids = decoder.loaded.tokenizer(PROMPT)["input_ids"] + [s.token_id for s in steps[:2]]
    with torch.inference_mode():
        logits = decoder.loaded.model(torch.tensor([ids])).logits[0, -1]
    p = torch.softmax(logits.double(), -1)
    assert steps[2].prob == pytest.approx(float(p[steps[2].token_id]), rel=1e-4)
    assert steps[2].entropy_bits == pytest.approx(float(-(p * p.clamp_min(1e-300).log2()).sum()), rel=1e-3)
    assert steps[2].top_ids[0] == steps[2].token_id and steps[2].top_probs[0] == pytest.approx(steps[2].prob, rel=1e-5)


def test_sampling_is_reproducible_by_seed(decoder):
    settings = dict(max_new_tokens=10, do_sample=True, temperature=1.5, top_k=0, top_p=1.0, stop_at_eos=False)
    a = [s.token_id for s in gen.generate(decoder, TaskContext(), PROMPT, seed=3, **settings)]
    b = [s.token_id for s in gen.generate(decoder, TaskContext(), PROMPT, seed=3, **settings)]
    c = [s.token_id for s in gen.generate(decoder, TaskContext(), PROMPT, seed=4, **settings)]
    assert a == b and a != c
    greedy = gen.generate(decoder, TaskContext(), PROMPT, max_new_tokens=5, do_sample=True, temperature=0.0, stop_at_eos=False)
    assert [s.token_id for s in greedy] == _reference(decoder, PROMPT, 5)  # temperature 0 = greedy, no error


def test_top_k_limits_the_choices(decoder):
    steps = gen.generate(decoder, TaskContext(), PROMPT, max_new_tokens=8, do_sample=True, temperature=3.0, top_k=2,
                         stop_at_eos=False, seed=1)
    for s in steps:  # with top-k 2 every chosen token is one of the model's two most likely
        assert s.token_id in s.top_ids[:2].tolist() or s.top_probs[1] == s.top_probs[2]


def test_context_length_stops_with_a_notice(tiny_models):
    session = loaded_session(tiny_models["llama"])  # max_position_embeddings = 64
    prompt = "word " * 58
    n_prompt = len(session.loaded.tokenizer(prompt)["input_ids"])
    steps = gen.generate(session, TaskContext(), prompt, max_new_tokens=50, stop_at_eos=False)
    assert n_prompt + len(steps) == 64 and steps[-1].finished == "context"
    assert "context length (64 tokens)" in steps[-1].notice
    with pytest.raises(LlmvizError, match="context length"):
        gen.step(session, TaskContext(), steps[-1].run_id, max_new_tokens=100)
    with pytest.raises(InputError, match="no room"):
        gen.start(session, TaskContext(), "word " * 80)


def test_cancel_during_a_step_keeps_its_token_and_the_state(tiny_models):
    session = loaded_session(tiny_models["llama"])
    reference = _reference(session, PROMPT, 6)
    first = gen.start(session, TaskContext(), PROMPT, max_new_tokens=6, stop_at_eos=False)
    ctx = TaskContext()
    handle = session.loaded.model.register_forward_hook(lambda *_: ctx.token.cancel())  # "Stop" arrives mid-forward
    try:
        second = gen.step(session, ctx, first.run_id)
    finally:
        handle.remove()
    assert second.finished == "cancelled" and "kept" in second.notice
    with pytest.raises(Cancelled):
        gen.step(session, ctx, first.run_id)  # a cancelled context does no more work
    with pytest.raises(LlmvizError, match="finished"):
        gen.step(session, TaskContext(), first.run_id)  # a queued step does not run past a stop
    rest = [gen.step(session, TaskContext(), first.run_id, max_new_tokens=6)]  # "Continue" carries on exactly
    rest += [gen.step(session, TaskContext(), first.run_id) for _ in range(3)]
    assert [s.token_id for s in [first, second, *rest]] == reference
    assert rest[-1].finished == "max_tokens"


def test_interrupted_forward_is_cropped_from_the_cache(tiny_models):
    session = loaded_session(tiny_models["llama"])
    reference = _reference(session, PROMPT, 4)
    first = gen.start(session, TaskContext(), PROMPT, max_new_tokens=4, stop_at_eos=False)
    state = session.extras[gen.EXTRAS_KEY]
    ids = torch.tensor([[first.token_id]])
    with torch.inference_mode():  # a forward that wrote the cache, then died before the step finished
        session.loaded.model(input_ids=ids, cache=state.cache, use_cache=True)
    assert state.cache.get_seq_length() == state.fed + 1
    second = gen.step(session, TaskContext(), first.run_id)
    keys = state.cache.layers[0].keys  # now a forward that died after its first layer
    state.cache.layers[0].update(torch.zeros_like(keys[..., :1, :]), torch.zeros_like(keys[..., :1, :]))
    assert [layer.get_seq_length() for layer in state.cache.layers] == [state.fed + 1, state.fed, state.fed]
    rest = [second] + [gen.step(session, TaskContext(), first.run_id) for _ in range(2)]
    assert [s.token_id for s in [first, *rest]] == reference


def test_continue_after_the_requested_tokens(decoder):
    first = gen.generate(decoder, TaskContext(), PROMPT, max_new_tokens=3, stop_at_eos=False)
    with pytest.raises(LlmvizError, match="ask for more"):
        gen.step(decoder, TaskContext(), first[-1].run_id)
    more = [gen.step(decoder, TaskContext(), first[-1].run_id, max_new_tokens=5) for _ in range(2)]
    assert [s.token_id for s in first + more] == _reference(decoder, PROMPT, 5)
    assert more[-1].finished == "max_tokens"


def test_attention_rows_equal_eager_attention(tiny_models):
    session = loaded_session(tiny_models["llama"])  # grouped-query attention: 4 heads share 2 key heads
    steps = gen.generate(session, TaskContext(), PROMPT, max_new_tokens=3, stop_at_eos=False)
    eager = AutoModelForCausalLM.from_pretrained(tiny_models["llama"], attn_implementation="eager")
    ids = session.loaded.tokenizer(PROMPT)["input_ids"] + [s.token_id for s in steps[:2]]
    with torch.inference_mode():
        attentions = eager(torch.tensor([ids]), output_attentions=True).attentions
    for step in (0, 2):
        n = len(ids) - 2 + step
        expected = np.stack([a[0, :, n - 1, :n].mean(0).numpy() for a in attentions])
        row = gen.attention_row(session, TaskContext(), steps[0].run_id, step)
        assert row.matrix.shape == (3, n) and row.step == step
        np.testing.assert_allclose(row.matrix, expected, atol=1e-5)
    assert steps[2].attention is None  # computed on request, not during generation
    with pytest.raises(LlmvizError, match="No attention"):
        gen.attention_row(session, TaskContext(), steps[0].run_id, 3)
    with pytest.raises(LlmvizError, match="no longer available"):
        gen.attention_row(session, TaskContext(), steps[0].run_id + 1, 0)


def test_eager_models_get_their_rows_with_each_step(tiny_models):
    """Models that only give attention through output_attentions (capture 'weights')."""
    import dataclasses

    session = loaded_session(tiny_models["llama"])
    session.loaded.model = AutoModelForCausalLM.from_pretrained(tiny_models["llama"], attn_implementation="eager").eval()
    session.loaded.info = dataclasses.replace(session.loaded.info, capture="weights")
    steps = gen.generate(session, TaskContext(), PROMPT, max_new_tokens=2, stop_at_eos=False)
    ids = session.loaded.tokenizer(PROMPT)["input_ids"] + [steps[0].token_id]
    with torch.inference_mode():
        attentions = session.loaded.model(torch.tensor([ids]), output_attentions=True).attentions
    np.testing.assert_allclose(steps[1].attention, np.stack([a[0, :, -1].mean(0).numpy() for a in attentions]), atol=1e-5)
    assert [s.token_id for s in steps] == _reference(session, PROMPT, 2)


def test_chat_template_and_bad_input(smollm2_session, tiny_models, minilm_session):
    steps = gen.generate(smollm2_session, TaskContext(), "What is 2+2?", max_new_tokens=3, chat=True)
    expected = smollm2_session.loaded.tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2+2?"}], add_generation_prompt=True, tokenize=False)
    assert steps[0].prompt_text == expected and expected.endswith("<|im_start|>assistant\n")
    assert steps[0].prompt_tokens == len(steps[0].prompt_pieces)
    gpt2 = loaded_session(tiny_models["gpt2"])
    with pytest.raises(InputError, match="no chat template"):
        gen.start(gpt2, TaskContext(), "hi", chat=True)
    with pytest.raises(InputError, match="prompt"):
        gen.start(gpt2, TaskContext(), "   ")
    with pytest.raises(LlmvizError, match="does not generate"):
        gen.start(minilm_session, TaskContext(), "hi")
    with pytest.raises(LlmvizError, match="no longer available"):
        gen.step(gpt2, TaskContext(), 10**6)


def test_real_smollm2_greedy_equals_generate(smollm2_session):
    prompt = "The history of language models begins"
    steps = gen.generate(smollm2_session, TaskContext(), prompt, max_new_tokens=8, stop_at_eos=False)
    assert [s.token_id for s in steps] == _reference(smollm2_session, prompt, 8)
    row = gen.attention_row(smollm2_session, TaskContext(), steps[0].run_id, 5)
    assert row.matrix.shape == (30, steps[5].context_len)
    np.testing.assert_allclose(row.matrix.sum(axis=1), 1.0, atol=1e-4)
