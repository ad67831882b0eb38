"""The generated quiz's right answers are what the model, its tokenizers and its attention say,
computed independently here, and they change when the model does."""

from __future__ import annotations

import numpy as np
import torch

from llmviz.core import quiz_jobs
from llmviz.core.attention import head_map
from llmviz.core.bundled import MINILM, gpt2_tokenizer_folder, model_folder
from llmviz.core.session import Session
from llmviz.core.specs import ModelSpec
from llmviz.core.tasks import TaskContext

TEXT = "The cat sat on the mat because tokenization matters."


def _answers(session: Session):
    ctx = TaskContext()
    trace = session.run(TEXT, ctx)
    return trace, quiz_jobs.questions(session, ctx, trace.id)


def _check_against_the_model(session: Session, trace, quiz) -> None:
    from transformers import BertTokenizer, GPT2Tokenizer

    loaded = session.require_model()
    values = quiz.values
    assert values["parameters"] == sum(p.numel() for p in loaded.model.parameters())
    word, gpt2_count, bert_count = values["tokens"]
    assert word in TEXT
    assert gpt2_count == len(GPT2Tokenizer.from_pretrained(gpt2_tokenizer_folder()).tokenize(word))
    assert bert_count == len(BertTokenizer.from_pretrained(model_folder(MINILM.source)).tokenize(word))
    assert values["int4_bytes"] == values["parameters"] / 2
    cap = trace.capture
    shares = np.array([[np.mean([head_map(cap, layer, head)[i, i - 1] for i in range(1, cap.num_tokens)])
                        for head in range(cap.num_heads)] for layer in range(cap.num_layers)])
    layer, head, share = values["previous_head"]
    assert (layer, head) == np.unravel_index(np.argmax(shares), shares.shape)
    assert abs(share - shares.max()) < 1e-4
    with torch.inference_mode():
        ids = torch.tensor([trace.tokens.ids.tolist()])
        logits = loaded.model(input_ids=ids).logits[0, -1]
    assert values["next_token_id"] == int(logits.argmax())
    for q in quiz.questions:
        assert len(set(q.choices)) == len(q.choices) >= 3 and 0 <= q.answer < len(q.choices)
    by_key = {q.key: q for q in quiz.questions}
    assert by_key["parameters"].choices[by_key["parameters"].answer] == f"{values['parameters']:,}"
    assert by_key["previous_head"].choices[by_key["previous_head"].answer] == f"layer {layer}, head {head}"


def test_answers_are_computed_from_the_bundled_model(smollm2_session):
    trace, quiz = _answers(smollm2_session)
    assert {q.key for q in quiz.questions} == {"parameters", "tokens", "previous_head", "int4", "next"}
    _check_against_the_model(smollm2_session, trace, quiz)


def test_answers_change_with_the_model(smollm2_session, tiny_models):
    _, big = _answers(smollm2_session)
    tiny = Session()
    tiny.load(ModelSpec(str(tiny_models["gpt2"]), device="cpu"))
    trace, small = _answers(tiny)
    _check_against_the_model(tiny, trace, small)
    assert small.values["parameters"] != big.values["parameters"]
    assert small.values["int4_bytes"] != big.values["int4_bytes"]
    assert small.values["tokens"] == big.values["tokens"]  # GPT-2 and BERT do not depend on the model


def test_head_statistics_pick_a_sink_and_a_previous_token_head(smollm2_session):
    ctx = TaskContext()
    trace = smollm2_session.run(TEXT, ctx)
    stats = quiz_jobs.head_statistics(smollm2_session, ctx, trace.id)
    assert quiz_jobs.head_statistics(smollm2_session, ctx, trace.id) is stats  # cached per trace
    layer, head = stats.best("attention-sink")
    assert stats.first[layer, head] == stats.first.max() > 0.5
    assert stats.previous.shape == stats.first.shape == (trace.capture.num_layers, trace.capture.num_heads)
