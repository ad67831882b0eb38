"""bitsandbytes' 4-bit layers keep their standard layout on every CPU (see llmviz.core.bnb_layout)."""

from __future__ import annotations

import pytest
import torch

from llmviz.core.bnb_layout import REPACK_FLAG, keep_standard_4bit_layout
from llmviz.core.specs import ModelSpec

bnb = pytest.importorskip("bitsandbytes")


def narrow_layer() -> torch.nn.Module:
    """16 inputs: narrower than one 64-value quantization block, as in the tiny test models."""
    layer = bnb.nn.Linear4bit(16, 32, bias=False, compute_dtype=torch.float32, quant_type="nf4")
    layer.weight = bnb.nn.Params4bit(torch.randn(32, 16), requires_grad=False, quant_type="nf4")
    return layer.to("cpu")


def test_repacking_is_turned_off_and_the_weights_stay_as_quantized():
    layer = narrow_layer()
    setattr(layer, REPACK_FLAG, True)  # what bitsandbytes sets on a CPU with AVX512-BF16
    before = layer.weight.data.clone()
    expected = bnb.functional.dequantize_4bit(layer.weight.data, layer.weight.quant_state)
    assert keep_standard_4bit_layout(torch.nn.Sequential(layer)) == 1
    assert getattr(layer, REPACK_FLAG) is False
    x = torch.randn(3, 16)
    with torch.inference_mode():
        out = layer(x)  # with the flag on, bitsandbytes 0.50 fails here: "shape '[32, 0]' is invalid"
    torch.testing.assert_close(out, x @ expected.T, rtol=1e-4, atol=1e-4)
    assert not getattr(layer.weight.quant_state, "packing_format_for_cpu", False)
    assert torch.equal(layer.weight.data, before)


def test_loading_a_4bit_model_keeps_the_standard_layout(tiny_models, monkeypatch):
    from transformers import BitsAndBytesConfig

    from llmviz.core.models import load_model

    # Layers built as on a CPU with AVX512-BF16 (the flag is set in Linear4bit.__init__), on any CPU
    monkeypatch.setattr(bnb.nn.modules, "has_avx512bf16", lambda: True)

    loaded = load_model(ModelSpec(str(tiny_models["llama"]), device="cpu"), quantization_config=BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32))
    layers = [m for m in loaded.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) == 21 and not any(getattr(m, REPACK_FLAG) for m in layers)
    with torch.inference_mode():
        loaded.model(torch.tensor([[1, 2, 3]]))
    assert not any(getattr(m.weight.quant_state, "packing_format_for_cpu", False) for m in layers)


def test_models_without_bitsandbytes_layers_are_left_alone():
    assert keep_standard_4bit_layout(torch.nn.Sequential(torch.nn.Linear(4, 4))) == 0
