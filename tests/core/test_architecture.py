"""Architecture summary (checked against each model's own config and modules), family detection
(decoder, encoder, encoder-decoder, MoE), position encoding, norm placement, memory per precision,
and the families table with both bundled models side by side."""

from __future__ import annotations

import json

import pytest
import torch

from llmviz.core.architecture import summarize
from llmviz.core.architecture_results import FAMILIES, PRECISIONS, load_families
from llmviz.core.errors import LlmvizError
from llmviz.core.session import Session
from llmviz.core.specs import ModelSpec
from llmviz.core.structure_jobs import architecture, families
from llmviz.core.tasks import TaskContext


@pytest.fixture(scope="module")
def gpt2_session(tiny_models):
    session = Session()
    session.load(ModelSpec(str(tiny_models["gpt2"]), device="cpu"))
    return session


def meta_summary(config, is_decoder: bool, is_encoder_decoder: bool = False):
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    cls = AutoModelForSeq2SeqLM if is_encoder_decoder else (AutoModelForCausalLM if is_decoder else AutoModel)
    with torch.device("meta"):
        model = cls.from_config(config)
    return summarize(model, config, title="t", source="s", is_decoder=is_decoder,
                     is_encoder_decoder=is_encoder_decoder), model


def test_smollm2_summary_matches_its_config(smollm2_session):
    s = architecture(smollm2_session, TaskContext())
    config = smollm2_session.loaded.model.config
    model = smollm2_session.loaded.model
    assert s.family == "decoder-only"
    assert (s.layers, s.hidden_size, s.heads, s.kv_heads, s.head_dim) == (
        config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.num_key_value_heads,
        config.head_dim)
    assert s.kv_heads < s.heads  # grouped-query attention
    assert s.ffn_size == config.intermediate_size and s.gated_ffn
    assert s.vocab_size == config.vocab_size and s.context_length == config.max_position_embeddings
    assert s.position_encoding == "RoPE" and s.rope_theta == config.rope_parameters["rope_theta"]
    assert s.tied_embeddings == (model.lm_head.weight is model.model.embed_tokens.weight) is True
    assert s.norm == type(model.model.norm).__name__ and s.norm_placement == "pre-norm (measured)"
    total = sum(p.numel() for p in model.parameters())
    assert s.total_params == total
    assert s.per_use_params == total + model.lm_head.weight.numel()
    assert sum(n for _, n in s.components) == total
    for _, bits in PRECISIONS:
        assert s.weight_bytes(bits) == total * bits // 8
    rows = {name.strip(): value for name, value, _ in s.rows()}
    assert rows["Total parameters"] == f"{total:,}"
    assert rows["Position encoding"] == f"RoPE (rotary), θ = {config.rope_parameters['rope_theta']:,.0f}"
    assert rows["KV heads"].startswith(f"{config.num_key_value_heads} (grouped-query")
    assert list(s.to_frame().columns) == ["field", "value", "meaning"]


def test_minilm_summary_is_an_encoder_with_learned_positions(minilm_session):
    s = architecture(minilm_session, TaskContext())
    config = minilm_session.loaded.model.config
    assert s.family == "encoder-only" and s.base_family == "encoder-only"
    assert (s.layers, s.hidden_size, s.heads) == (config.num_hidden_layers, config.hidden_size,
                                                  config.num_attention_heads)
    assert s.kv_heads == s.heads
    assert s.position_encoding == "learned absolute" and s.rope_theta is None
    assert not s.tied_embeddings and not s.gated_ffn
    assert s.norm == "LayerNorm" and s.norm_placement == "post-norm (measured)"
    assert s.total_params == sum(p.numel() for p in minilm_session.loaded.model.parameters())


def test_gpt2_is_pre_norm_with_learned_positions_and_4x_ffn(gpt2_session):
    s = architecture(gpt2_session, TaskContext())
    config = gpt2_session.loaded.model.config
    assert s.family == "decoder-only"
    assert s.position_encoding == "learned absolute"
    assert s.ffn_size == 4 * config.n_embd and not s.gated_ffn
    assert s.norm_placement == "pre-norm (measured)"
    assert s.tied_embeddings


def test_norm_placement_from_names_on_the_meta_device(smollm2_session, minilm_session):
    for session, expected in ((smollm2_session, "pre-norm"), (minilm_session, "post-norm")):
        config = session.loaded.model.config
        s, _ = meta_summary(config, is_decoder=session.loaded.info.is_decoder)
        assert s.norm_placement == f"{expected} (from module names)"
        assert s.total_params == session.loaded.info.num_parameters


def test_mixture_of_experts_and_encoder_decoder_families():
    from transformers import MixtralConfig, T5Config

    moe, model = meta_summary(MixtralConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                            num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                                            num_experts_per_tok=2, vocab_size=100), is_decoder=True)
    assert moe.family == "mixture-of-experts" and moe.base_family == "decoder-only"
    assert (moe.experts, moe.experts_per_token) == (4, 2)
    assert moe.total_params == sum(p.numel() for p in model.parameters())
    assert "4 experts, 2 per token" in dict((k, v) for k, v, _ in moe.rows())["Architecture family"]
    t5, _ = meta_summary(T5Config(d_model=32, d_ff=64, num_layers=2, num_heads=4, vocab_size=100),
                         is_decoder=False, is_encoder_decoder=True)
    assert t5.family == "encoder-decoder" and t5.ffn_size == 64
    assert t5.position_encoding == "relative position bias"


def test_families_table_and_bundled_models_side_by_side(minilm_session, smollm2_session):
    result = families(minilm_session, TaskContext())
    assert tuple(f.key for f in result.families) == FAMILIES
    gpt = result.families[0]
    assert gpt.name == "GPT-style (Autoregressive)" and "LLaMA" in gpt.examples
    assert result.loaded_family == "encoder-only" and result.loaded_source == "bundled:minilm"
    by_source = {m.source: m for m in result.models}
    # the loaded model from its weights, the other from its config on the meta device: both real counts
    assert by_source["bundled:minilm"].measured_on == "loaded weights"
    assert by_source["bundled:smollm2"].measured_on.startswith("built from its config")
    assert by_source["bundled:smollm2"].total_params == sum(p.numel() for p in smollm2_session.loaded.model.parameters())
    assert by_source["bundled:minilm"].total_params == sum(p.numel() for p in minilm_session.loaded.model.parameters())
    side = result.side_by_side()
    assert list(side.columns) == [m.title for m in result.models]
    assert side.loc["Architecture family"].tolist() == [m.family for m in result.models]
    assert len(result.families_frame()) == 4


def test_damaged_families_file_gives_a_clear_message(tmp_path, monkeypatch):
    (tmp_path / "architectures.json").write_text(json.dumps({"families": [{"key": "decoder-only"}]}))
    monkeypatch.setenv("LLMVIZ_RESOURCES", str(tmp_path))
    with pytest.raises(LlmvizError, match="architecture families table .* damaged"):
        load_families()
    monkeypatch.setenv("LLMVIZ_RESOURCES", str(tmp_path / "missing"))
    with pytest.raises(LlmvizError, match="missing or damaged"):
        load_families()


def test_no_model_loaded():
    with pytest.raises(LlmvizError, match="No model is loaded"):
        architecture(Session(), TaskContext())
