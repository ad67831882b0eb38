"""The module tree: counts against sum(p.numel()), tied weights once, order, children, search, export,
config values per module, components, and the weight histogram job."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from llmviz.core.errors import LlmvizError
from llmviz.core.session import Session
from llmviz.core.specs import ModelSpec
from llmviz.core.structure import module_tree
from llmviz.core.structure_jobs import module_weights, structure
from llmviz.core.structure_results import COMPONENTS, component_of, config_for_module, params_by_component
from llmviz.core.tasks import TaskContext


@pytest.fixture(scope="module")
def tiny_sessions(tiny_models):
    out = {}
    for name, folder in tiny_models.items():
        session = Session()
        session.load(ModelSpec(str(folder), device="cpu"))
        out[name] = session
    return out


def unique_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def per_use_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))


def check_tree_matches(model: torch.nn.Module) -> None:
    tree = module_tree(model)
    names = [n for n, _ in model.named_modules()]
    assert list(tree.paths) == names
    assert tree.total == unique_count(model)
    assert int(tree.per_use_params[0]) == per_use_count(model)
    assert int(tree.trainable_params[0]) == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert int(tree.storage_bytes[0]) == sum(p.numel() * p.element_size() for p in model.parameters())
    # a subtree with no shared weight inside holds exactly its module's parameters
    checked = 0
    for i, path in enumerate(tree.paths):
        if tree.per_use_params[i] == tree.total_params[i]:
            assert int(tree.total_params[i]) == unique_count(model.get_submodule(path)), path
            checked += 1
    assert checked >= len(tree) - 3
    # children and rows agree with the parent array
    for i in range(1, len(tree)):
        parent = int(tree.parent[i])
        assert tree.child(parent, int(tree.row[i])) == i
        assert tree.depth[i] == tree.depth[parent] + 1
        assert tree.paths[i].startswith(tree.paths[parent])
    assert sum(tree.num_children(i) for i in range(len(tree))) == len(tree) - 1


@pytest.mark.parametrize("name", ["llama", "gpt2", "bert"])
def test_tiny_models_counts_equal_sum_of_numel(tiny_sessions, name):
    check_tree_matches(tiny_sessions[name].loaded.model)


def test_bundled_models_counts_equal_sum_of_numel(smollm2_session, minilm_session):
    for session in (smollm2_session, minilm_session):
        check_tree_matches(session.loaded.model)


def test_tied_embedding_counted_once_and_marked(tiny_sessions):
    model = tiny_sessions["llama"].loaded.model
    assert model.lm_head.weight is model.model.embed_tokens.weight
    tree = module_tree(model)
    head = tree.index_of_path("lm_head")
    embed = tree.index_of_path("model.embed_tokens")
    n = model.lm_head.weight.numel()
    assert tree.own_params[head] == 0 and tree.total_params[head] == 0
    assert tree.own_params[embed] == n
    assert tree.tied(head) == "weight = model.embed_tokens.weight"
    assert tree.tied_pairs() == [("lm_head.weight", "model.embed_tokens.weight", n)]
    assert int(tree.per_use_params[0]) - tree.total == n
    assert "= model.embed_tokens.weight" in tree.shapes(head)


def test_shared_submodule_appears_once_like_named_modules():
    shared = torch.nn.Linear(4, 4)
    model = torch.nn.Sequential(shared, torch.nn.ReLU(), shared)
    tree = module_tree(model)
    assert list(tree.paths) == [n for n, _ in model.named_modules()] == ["", "0", "1"]
    assert tree.total == 20


def test_meta_device_model_counts_without_memory():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=4, num_attention_heads=32,
                         vocab_size=32000)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    tree = module_tree(model)
    assert tree.total == unique_count(model)
    assert set(d for d in tree.devices if d) == {"meta"}
    q = tree.index_of_path("model.layers.0.self_attn.q_proj")
    assert tree.params[q][0].shape == (4096, 4096)
    assert tree.storage_bytes[q] == 4096 * 4096 * 4


def test_search_finds_paths_and_classes(tiny_sessions):
    tree = module_tree(tiny_sessions["llama"].loaded.model)
    mlp = tree.matches("MLP")
    assert mlp and all("mlp" in tree.paths[i].lower() or "mlp" in tree.classes[i].lower() for i in mlp)
    assert tree.matches("LlamaRMSNorm") == [i for i, c in enumerate(tree.classes) if c == "LlamaRMSNorm"]
    assert tree.matches("no-such-module") == []
    assert tree.matches("   ") == []


def test_to_frame_round_trips_through_csv(tiny_sessions, tmp_path):
    tree = module_tree(tiny_sessions["gpt2"].loaded.model)
    path = tmp_path / "tree.csv"
    tree.to_frame().to_csv(path, index=False)
    back = pd.read_csv(path, keep_default_na=False)
    assert len(back) == len(tree)
    assert back.loc[0, "parameters"] == tree.total
    assert back["own_parameters"].sum() == tree.total
    assert list(back["path"][1:]) == list(tree.paths[1:])
    assert back.loc[tree.index_of_path("lm_head"), "tied"] == "weight = transformer.wte.weight"


def test_config_values_that_concern_a_module(tiny_sessions):
    config = tiny_sessions["llama"].loaded.info.config
    attn = dict(config_for_module(config, "model.layers.0.self_attn", "LlamaAttention"))
    assert attn["num_attention_heads"] == config["num_attention_heads"]
    assert attn["num_key_value_heads"] == config["num_key_value_heads"]
    assert "intermediate_size" not in attn
    mlp = dict(config_for_module(config, "model.layers.0.mlp", "LlamaMLP"))
    assert mlp["intermediate_size"] == config["intermediate_size"] and mlp["hidden_act"] == config["hidden_act"]
    norm = dict(config_for_module(config, "model.norm", "LlamaRMSNorm"))
    assert set(norm) == {"rms_norm_eps"}
    root = dict(config_for_module(config, "", "LlamaForCausalLM"))
    assert root["num_hidden_layers"] == config["num_hidden_layers"] and root["vocab_size"] == config["vocab_size"]


def test_components_partition_the_parameters(smollm2_session, minilm_session):
    for session in (smollm2_session, minilm_session):
        tree = module_tree(session.loaded.model)
        parts = params_by_component(tree)
        assert set(parts) == set(COMPONENTS)
        assert sum(parts.values()) == tree.total
        assert parts["attention"] > 0 and parts["feed-forward"] > parts["attention"] and parts["norms"] > 0
    assert component_of("model.layers.0.self_attn.q_proj", "Linear") == "attention"
    assert component_of("encoder.layer.0.attention.output.LayerNorm", "LayerNorm") == "norms"
    assert component_of("encoder.layer.0.output.dense", "Linear") == "feed-forward"
    assert component_of("transformer.wpe", "Embedding") == "embeddings"
    assert component_of("lm_head", "Linear") == "output head"


def test_weight_histogram_counts_every_unique_weight(smollm2_session):
    ctx = TaskContext()
    model = smollm2_session.loaded.model
    for path in ("model.layers.0.self_attn", "model.norm", ""):
        hist = module_weights(smollm2_session, ctx, path, bins=64)
        params = list(model.get_submodule(path).parameters())
        values = torch.cat([p.detach().reshape(-1).double() for p in params])
        assert hist.count == values.numel() == int(hist.counts.sum())
        assert hist.tensors == len(params)
        assert math.isclose(hist.mean, float(values.mean()), rel_tol=1e-6, abs_tol=1e-9)
        assert math.isclose(hist.std, float(values.std(unbiased=False)), rel_tol=1e-4)
        assert hist.min == float(values.min()) and hist.max == float(values.max())
        assert hist.edges[0] == hist.min and math.isclose(hist.edges[-1], hist.max)
        assert hist.zeros == int((values == 0).sum())
        expected, _ = np.histogram(values.float().numpy(), bins=64, range=(hist.min, hist.max))
        moved = int(np.abs(hist.counts - expected).sum())  # values on a bin edge may round either way
        assert moved <= max(2, values.numel() // 100_000), moved


def test_weight_histogram_of_a_module_without_weights_and_of_a_bad_path(smollm2_session):
    ctx = TaskContext()
    hist = module_weights(smollm2_session, ctx, "model.rotary_emb")
    assert hist.empty and "no parameters" in hist.note
    with pytest.raises(LlmvizError, match="no module called"):
        module_weights(smollm2_session, ctx, "model.layers.99")


def test_weight_histogram_on_the_meta_device_explains():
    from transformers import GPT2Config, GPT2LMHeadModel

    from llmviz.core.models import LoadedModel

    with torch.device("meta"):
        model = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=4, vocab_size=100))
    session = Session()
    session.loaded = LoadedModel(spec=ModelSpec("meta"), model=model, tokenizer=None, info=None)
    hist = module_weights(session, TaskContext(), "transformer.h.0")
    assert hist.empty and "meta device" in hist.note


def test_structure_job_is_cached_per_model(tiny_sessions):
    session = tiny_sessions["bert"]
    ctx = TaskContext()
    assert structure(session, ctx) is structure(session, ctx)
    np.testing.assert_array_equal(structure(session, ctx).total_params, module_tree(session.loaded.model).total_params)
