"""Attention recomputed from captured q/k equals transformers' own eager attention."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForCausalLM

from llmviz.core.attention import head_map, layer_maps
from llmviz.core.models import load_model
from llmviz.core.specs import ModelSpec
from llmviz.core.trace import run_trace

TEXT = "The cat sat on the mat because it was tired. Le chat 猫 🤖!"


def eager_attentions(folder, ids, decoder):
    cls = AutoModelForCausalLM if decoder else AutoModel
    model = cls.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32).eval()
    with torch.inference_mode():
        out = model(input_ids=torch.as_tensor(ids)[None], output_attentions=True)
    return [a[0].numpy() for a in out.attentions]


def max_diff(trace, reference):
    cap = trace.capture
    return max(float(np.abs(head_map(cap, layer, h) - reference[layer][h]).max())
               for layer in range(cap.num_layers) for h in range(cap.num_heads))


def test_smollm2_matches_eager_on_every_head(smollm2_session):
    from llmviz.core import bundled

    trace = smollm2_session.run(TEXT)
    assert trace.capture.method == "qk" and trace.capture.num_kv_heads == 3
    ref = eager_attentions(bundled.model_folder("bundled:smollm2"), trace.tokens.ids, True)
    assert max_diff(trace, ref) <= 1e-4


def test_minilm_matches_eager_on_every_head(minilm_session):
    from llmviz.core import bundled

    trace = minilm_session.run(TEXT)
    ref = eager_attentions(bundled.model_folder("bundled:minilm"), trace.tokens.ids, False)
    assert max_diff(trace, ref) <= 1e-4
    assert not trace.capture.causal[0]  # an encoder attends both ways


@pytest.mark.parametrize("name", ["llama", "gpt2", "bert"])
def test_tiny_models_match_eager(tiny_models, name):
    loaded = load_model(ModelSpec(str(tiny_models[name]), device="cpu"))
    trace = run_trace(loaded, TEXT)
    ref = eager_attentions(tiny_models[name], trace.tokens.ids, loaded.info.is_decoder)
    assert max_diff(trace, ref) <= 1e-4


def test_maps_are_distributions(smollm2_session):
    trace = smollm2_session.run("one two three four")
    maps = layer_maps(trace.capture, 5)
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.triu(maps, 1) == 0)  # causal: no attention to later tokens


def test_grouped_query_heads_share_keys():
    from llmviz.core.trace_data import AttentionCapture

    cap = AttentionCapture("qk", num_heads=9, num_kv_heads=3)
    assert [cap.kv_head(h) for h in range(9)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_out_of_range_head_is_an_error(smollm2_session):
    trace = smollm2_session.run("a b")
    with pytest.raises(IndexError):
        head_map(trace.capture, 30, 0)
    with pytest.raises(IndexError):
        head_map(trace.capture, 0, 9)
