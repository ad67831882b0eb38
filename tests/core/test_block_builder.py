"""The block builder: counts by formula == sum(p.numel()) of the module it built (per component and
in total), output shapes, what norm placement changes, validation messages, and the comparison with
one block of each bundled model."""

from __future__ import annotations

import pytest
import torch

from llmviz.core.block_builder import build_and_run, compare_with_loaded
from llmviz.core.block_builder_results import BlockSpec, component_formulas, formula_per_block, formula_total
from llmviz.core.errors import InputError
from llmviz.core.session import Session
from llmviz.core.simple_transformer import SimpleTransformer, SimpleTransformerBlock
from llmviz.core.structure import module_tree
from llmviz.core.structure_jobs import build_block
from llmviz.core.tasks import TaskContext

SPECS = [
    BlockSpec(),  # the notebook's: embed 64, 4 heads, FFN 128, input [2, 10, 64]
    BlockSpec(embed_dim=96, num_heads=8, ffn_dim=256, num_blocks=3, norm="pre", batch=1, seq_len=7),
    BlockSpec(embed_dim=30, num_heads=5, ffn_dim=7, num_blocks=2, batch=3, seq_len=1),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"E{s.embed_dim}-H{s.num_heads}-F{s.ffn_dim}-N{s.num_blocks}")
def test_counts_agree_with_the_module_and_the_formula(spec):
    built = build_and_run(spec, TaskContext())
    independent = SimpleTransformer(spec.embed_dim, spec.num_heads, spec.ffn_dim, spec.num_blocks)
    assert built.measured_total == sum(p.numel() for p in independent.parameters())
    assert built.measured_total == built.formula_total == formula_total(spec)
    assert built.trainable == built.measured_total
    block = SimpleTransformerBlock(spec.embed_dim, spec.num_heads, spec.ffn_dim)
    by_module = {"attention": block.attention, "feed-forward": block.feed_forward}
    for c in built.components:
        assert c.measured == c.formula_total == c.per_block * spec.num_blocks
        if c.component in by_module:
            assert c.per_block == sum(p.numel() for p in by_module[c.component].parameters())
        else:
            assert c.per_block == sum(p.numel() for p in (*block.norm1.parameters(), *block.norm2.parameters()))
    assert built.output_shape == built.input_shape == (spec.batch, spec.seq_len, spec.embed_dim)
    e, f = spec.embed_dim, spec.ffn_dim
    assert formula_per_block(spec) == 4 * e * e + 2 * e * f + 9 * e + f
    assert "MultiheadAttention" in built.module_text


def test_substituted_formulas_evaluate_to_their_values():
    for _, _, substituted, value in component_formulas(BlockSpec(embed_dim=48, num_heads=6, ffn_dim=100)):
        assert eval(substituted.replace("·", "*").replace("²", "**2")) == value  # the formula is our own text


def test_norm_placement_changes_the_computation():
    post = build_and_run(BlockSpec(num_blocks=2, norm="post"), TaskContext())
    pre = build_and_run(BlockSpec(num_blocks=2, norm="pre"), TaskContext())
    assert post.measured_total == pre.measured_total
    # post-norm ends with a LayerNorm (fresh: scale 1, shift 0): every position has mean 0, std 1
    assert abs(post.output_mean) < 1e-5 and abs(post.output_std - 1) < 0.05
    assert abs(pre.output_std - 1) > 0.05 or abs(pre.output_mean) > 1e-3


def test_same_seed_same_output_and_the_callers_rng_untouched():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = build_and_run(BlockSpec(), TaskContext())
    assert torch.rand(1) == expected
    b = build_and_run(BlockSpec(), TaskContext())
    assert (a.output_mean, a.output_std) == (b.output_mean, b.output_std)


@pytest.mark.parametrize("spec, message", [
    (BlockSpec(embed_dim=100, num_heads=3), "divisible by the number of heads"),
    (BlockSpec(embed_dim=0), r"Embed dim \(E\) must be a whole number from 1"),
    (BlockSpec(num_blocks=65), "Blocks must be a whole number from 1 to 64"),
    (BlockSpec(norm="middle"), "Norm placement must be 'post' or 'pre'"),
    (BlockSpec(seq_len=2.5), "Sequence length must be a whole number"),
])
def test_bad_specs_get_clear_messages(spec, message):
    with pytest.raises(InputError, match=message):
        build_and_run(spec, TaskContext())


def test_too_big_for_memory_is_refused_before_building():
    spec = BlockSpec(embed_dim=8192, num_heads=64, ffn_dim=65536, num_blocks=64)
    with pytest.raises(InputError, match="GiB"):
        spec.validate(available_bytes=8 * 2**30)


def test_minilm_block_is_exactly_the_notebook_block_at_its_sizes(minilm_session):
    """BERT's layer is post-norm attention + a 2-matrix FFN + 2 LayerNorms: the same counts."""
    info = minilm_session.loaded.info
    spec = BlockSpec(embed_dim=info.hidden_size, num_heads=info.num_heads, ffn_dim=info.config["intermediate_size"])
    built = build_block(minilm_session, TaskContext(), spec)
    cmp = built.comparison
    assert cmp is not None and cmp.block_path == "encoder.layer.0"
    assert [(r.built_per_block, r.loaded) for r in cmp.rows] == [(r.built_per_block, r.built_per_block) for r in cmp.rows]
    block = minilm_session.loaded.model.encoder.layer[0]
    assert cmp.loaded_total == sum(p.numel() for p in block.parameters()) == cmp.built_total
    assert not any("Sizes differ" in n for n in cmp.notes)


def test_smollm2_block_differs_for_stated_reasons(smollm2_session):
    info = smollm2_session.loaded.info
    spec = BlockSpec(embed_dim=info.hidden_size, num_heads=info.num_heads, ffn_dim=info.config["intermediate_size"],
                     norm="pre")
    built = build_and_run(spec, TaskContext())
    cmp = compare_with_loaded(built, smollm2_session.loaded, module_tree(smollm2_session.loaded.model))
    assert cmp is not None
    block = smollm2_session.loaded.model.model.layers[0]
    loaded = {r.component: r.loaded for r in cmp.rows}
    e, f, kv = info.hidden_size, info.config["intermediate_size"], info.num_kv_heads * info.head_dim
    assert loaded["attention"] == sum(p.numel() for p in block.self_attn.parameters()) == 2 * e * e + 2 * e * kv
    assert loaded["feed-forward"] == sum(p.numel() for p in block.mlp.parameters()) == 3 * e * f
    assert loaded["norms"] == 2 * e
    assert sum(loaded.values()) == cmp.loaded_total
    notes = " ".join(cmp.notes)
    assert "Grouped-query attention" in notes and "Gated feed-forward" in notes and "RMSNorm" in notes
    assert "No biases" in notes and "Sizes differ" not in notes
    assert "k_proj [192, 576]" in cmp.rows[0].matrices


def test_without_a_model_the_block_still_builds():
    built = build_block(Session(), TaskContext(), BlockSpec())
    assert built.comparison is None and "Load a model" in built.comparison_note
