"""Build the user's transformer block (the notebook's SimpleTransformerBlock) in the engine, run it,
count its parameters, and set one block of the loaded model beside it.

The settings, results and closed-form formulas are in `block_builder_results`.
"""

from __future__ import annotations

import time

import psutil
import torch

from .architecture import block_index
from .block_builder_results import (
    BLOCK_COMPONENTS,
    BlockComparison,
    BlockSpec,
    BuiltBlock,
    ComponentCount,
    LoadedComponent,
    component_formulas,
    formula_per_block,
    formula_total,
)
from .models import LoadedModel
from .simple_transformer import SimpleTransformer
from .structure_results import ModuleTree, component_of
from .tasks import TaskContext


def _component_of_built(name: str) -> str:
    """Parameter name inside a SimpleTransformerBlock -> component."""
    if name.startswith("attention."):
        return "attention"
    if name.startswith("feed_forward."):
        return "feed-forward"
    return "norms"


# ------------------------------------------------------------------ building and running


def build_and_run(spec: BlockSpec, ctx: TaskContext, seed: int = 0) -> BuiltBlock:
    """Build the stack on the CPU, run a random [batch, seq, E] input through it, count its parameters."""
    spec.validate(psutil.virtual_memory().available)
    ctx.progress("Building the transformer block", None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SimpleTransformer(spec.embed_dim, spec.num_heads, spec.ffn_dim, spec.num_blocks,
                                  pre_norm=spec.norm == "pre").eval()
        x = torch.randn(spec.batch, spec.seq_len, spec.embed_dim)
    ctx.check()
    measured = dict.fromkeys(BLOCK_COMPONENTS, 0)
    for name, p in model.named_parameters():
        measured[_component_of_built(name.split(".", 1)[1])] += p.numel()
    with torch.inference_mode():
        started = time.perf_counter()
        y = model(x)
        forward_ms = (time.perf_counter() - started) * 1000
    components = tuple(
        ComponentCount(name, formula, sub, value, value * spec.num_blocks, measured[name])
        for name, formula, sub, value in component_formulas(spec)
    )
    return BuiltBlock(
        spec=spec, input_shape=tuple(x.shape), output_shape=tuple(y.shape), components=components,
        measured_total=sum(p.numel() for p in model.parameters()), formula_total=formula_total(spec),
        forward_ms=forward_ms, output_mean=float(y.mean()), output_std=float(y.std()),
        module_text=str(model[0]), trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
    )


# ------------------------------------------------------------------ one block of the loaded model


def compare_with_loaded(built: BuiltBlock, loaded: LoadedModel, tree: ModuleTree) -> BlockComparison | None:
    """The built block beside the loaded model's first block, component by component."""
    block = block_index(tree, loaded.info.num_layers)
    if block < 0:
        return None
    base = tree.paths[block] + "."
    counts = dict.fromkeys(BLOCK_COMPONENTS, 0)
    other = 0
    shapes: dict[str, list[str]] = {c: [] for c in BLOCK_COMPONENTS}
    facts = {"attention_bias": 0, "ffn_matrices": 0, "norms": 0, "norm_params": 0, "kv_out": set()}
    for i in range(block + 1, len(tree)):
        if tree.depth[i] <= tree.depth[block]:
            break
        own = int(tree.own_params[i])
        if not own:
            continue
        sub = tree.paths[i][len(base):]
        comp = component_of(sub, tree.classes[i])
        if comp not in counts:
            other += own
            continue
        counts[comp] += own
        for p in tree.params[i]:
            if len(p.shape) == 2:
                shapes[comp].append(f"{sub.rsplit('.', 1)[-1]} {list(p.shape)}")
                if comp == "feed-forward":
                    facts["ffn_matrices"] += 1
                if comp == "attention" and any(k in sub for k in ("k_proj", "v_proj", ".key", ".value")):
                    facts["kv_out"].add(p.shape[0])
            elif p.name == "bias" and comp == "attention":
                facts["attention_bias"] += 1
        if comp == "norms":
            facts["norms"] += 1
            facts["norm_params"] += own
    per_block = {name: value for name, _, _, value in component_formulas(built.spec)}
    rows = tuple(LoadedComponent(c, per_block[c], counts[c], ", ".join(shapes[c]) or "—") for c in BLOCK_COMPONENTS)
    notes = _difference_notes(built.spec, loaded, facts, tree.classes[block])
    if other:
        notes.append(f"{other:,} parameters of the loaded block belong to none of these parts.")
    return BlockComparison(
        model_title=loaded.info.title, block_path=tree.paths[block], block_class=tree.classes[block], rows=rows,
        loaded_total=int(tree.total_params[block]), built_total=formula_per_block(built.spec), notes=tuple(notes),
    )


def _difference_notes(spec: BlockSpec, loaded: LoadedModel, facts: dict, block_class: str) -> list[str]:
    info = loaded.info
    e = info.hidden_size
    notes = []
    config = info.config
    f = config.get("intermediate_size") or config.get("n_inner") or config.get("d_ff") or 4 * e
    if (spec.embed_dim, spec.num_heads, spec.ffn_dim) != (e, info.num_heads, f):
        notes.append(f"Sizes differ: built E={spec.embed_dim}, {spec.num_heads} heads, F={spec.ffn_dim}; "
                     f"{block_class} has E={e}, {info.num_heads} heads, F={f}. 'Match loaded model' copies them.")
    kv = sorted(facts["kv_out"])
    if info.num_kv_heads and info.num_kv_heads < info.num_heads:
        kv_dim = info.num_kv_heads * info.head_dim
        notes.append(f"Grouped-query attention: K and V project to {info.num_kv_heads} KV heads × {info.head_dim} = "
                     f"{kv_dim} dims, not {e}, so each is {e // max(1, kv_dim)}× smaller than Q.")
    elif kv and kv[0] != e:
        notes.append(f"K and V project to {kv[0]} dims, not {e}.")
    if facts["attention_bias"] == 0:
        notes.append("No biases in the attention projections (nn.MultiheadAttention has 4·E of them).")
    if facts["ffn_matrices"] >= 3:
        notes.append(f"Gated feed-forward ({config.get('hidden_act', 'gated')}): three E×F matrices (gate, up, down) "
                     "instead of two, and no biases: 3·E·F.")
    if facts["norms"]:
        per_norm = facts["norm_params"] // facts["norms"]
        if per_norm == e:
            notes.append(f"{facts['norms']} RMSNorms with a scale only (E each), where LayerNorm also has a shift (2·E).")
        elif per_norm == 2 * e:
            notes.append(f"{facts['norms']} LayerNorms with scale and shift (2·E each), as in the built block.")
    return notes
