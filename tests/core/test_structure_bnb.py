"""A real bitsandbytes 4-bit SmolLM2, quantized on the CPU: the tree counts the weights each packed
parameter represents (torchinfo and sum(p.numel()) see about half), storage is the real packed bytes
plus the scales, and the weight histogram is of the dequantized values."""

from __future__ import annotations

import math

import pytest
import torch

from llmviz.core.models import load_model
from llmviz.core.session import Session
from llmviz.core.specs import ModelSpec
from llmviz.core.structure import module_tree, quant_state_bytes
from llmviz.core.structure_jobs import module_weights
from llmviz.core.tasks import TaskContext


@pytest.fixture(scope="module")
def nf4_session():
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")
    session = Session()
    session.loaded = load_model(ModelSpec("bundled:smollm2", device="cpu"), quantization_config=config)
    return session


def test_4bit_tree_counts_represented_weights(nf4_session, smollm2_session):
    model = nf4_session.loaded.model
    packed = [p for p in model.parameters() if type(p).__name__ == "Params4bit"]
    assert packed, "bitsandbytes did not quantize anything"
    tree = module_tree(model)
    fp32_total = sum(p.numel() for p in smollm2_session.loaded.model.parameters())
    assert tree.total == fp32_total  # the same weights, however they are stored
    assert sum(p.numel() for p in model.parameters()) < 0.7 * fp32_total  # what a plain count sees
    expected_bytes = sum(p.numel() * p.element_size() for p in model.parameters()) + sum(
        quant_state_bytes(p) for p in packed)
    assert int(tree.storage_bytes[0]) == expected_bytes
    q = tree.index_of_path("model.layers.0.self_attn.q_proj")
    weight = model.get_submodule("model.layers.0.self_attn.q_proj").weight
    assert tree.quantized[q]
    assert tree.own_params[q] == 576 * 576
    assert tree.params[q][0].shape == (576, 576)
    assert "packed uint8" in tree.shapes(q)
    assert tree.storage_bytes[q] == weight.numel() + quant_state_bytes(weight)  # 2 weights per byte + scales
    assert quant_state_bytes(weight) > 0


def test_torchinfo_sees_the_packed_count(nf4_session):
    """What the issue says torchinfo does with 4-bit models: about half the parameters."""
    from torchinfo import summary

    model = nf4_session.loaded.model
    ids = torch.tensor([[1, 2, 3, 4]])
    stats = summary(model, input_data={"input_ids": ids, "use_cache": False}, verbose=0, depth=20)
    tree = module_tree(model)
    assert stats.total_params < 0.75 * int(tree.per_use_params[0])
    assert stats.total_params == sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))


def test_4bit_histogram_is_of_dequantized_values(nf4_session, smollm2_session):
    path = "model.layers.0.self_attn.q_proj"
    hist = module_weights(nf4_session, TaskContext(), path, bins=50)
    assert hist.count == 576 * 576 == int(hist.counts.sum())
    assert "dequantized from nf4" in hist.note
    original = smollm2_session.loaded.model.get_submodule(path).weight.detach().double()
    # nf4 keeps each block's absmax exactly and rounds the rest to 16 levels: the spread survives
    assert math.isclose(hist.std, float(original.std(unbiased=False)), rel_tol=0.05)
    assert math.isclose(hist.max, float(original.max()), rel_tol=0.02)
    assert hist.min < 0 < hist.max
