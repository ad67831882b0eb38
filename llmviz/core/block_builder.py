"""Build a transformer block (the notebook's SimpleTransformerBlock), run it, and count its parameters.

The counts come two ways and must agree: `sum(p.numel())` over the torch module that was
built, and the closed-form formula per component (E = embed dim, F = FFN dim):

    attention  (nn.MultiheadAttention)  in_proj 3·E·E + 3·E, out_proj E·E + E  = 4E² + 4E
    feed-forward (Linear, ReLU, Linear)  E·F + F + F·E + E                     = 2EF + F + E
    norms      (two LayerNorms)          2 × (E scale + E shift)               = 4E

One block of the loaded model is then set beside it, component by component, with the
reasons the numbers differ (grouped-query attention, gated FFN, no biases, RMSNorm).

Result types are torch-free (the view imports them); torch is imported inside functions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    from .models import LoadedModel
    from .structure import ModuleTree
    from .tasks import TaskContext

NORMS = ("post", "pre")
LIMITS = {"embed_dim": (1, 8192), "num_heads": (1, 128), "ffn_dim": (1, 65536), "num_blocks": (1, 64),
          "batch": (1, 64), "seq_len": (1, 4096)}
LABELS = {"embed_dim": "Embed dim (E)", "num_heads": "Heads", "ffn_dim": "FFN dim (F)", "num_blocks": "Blocks",
          "batch": "Batch", "seq_len": "Sequence length"}
BLOCK_COMPONENTS = ("attention", "feed-forward", "norms")


@dataclass(frozen=True)
class BlockSpec:
    """What the user chose; defaults are the notebook's (embed 64, 4 heads, FFN 128, input 2 × 10)."""

    embed_dim: int = 64
    num_heads: int = 4
    ffn_dim: int = 128
    num_blocks: int = 1
    norm: str = "post"
    batch: int = 2
    seq_len: int = 10

    def validate(self, available_bytes: int | None = None) -> None:
        """Raise InputError with a message saying what to change."""
        for name, (lo, hi) in LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or not lo <= value <= hi:
                raise InputError(f"{LABELS[name]} must be a whole number from {lo} to {hi:,} (got {value!r}).")
        if self.norm not in NORMS:
            raise InputError(f"Norm placement must be 'post' or 'pre' (got {self.norm!r}).")
        if self.embed_dim % self.num_heads:
            raise InputError(
                f"The embed dim ({self.embed_dim}) must be divisible by the number of heads ({self.num_heads}): "
                f"each head gets embed dim / heads dimensions. Try {self.num_heads * max(1, self.embed_dim // self.num_heads)} "
                f"or {self.num_heads * (self.embed_dim // self.num_heads + 1)}.")
        if available_bytes is not None and self.memory_bytes() > available_bytes // 4:
            raise InputError(
                f"This block stack needs about {self.memory_bytes() / 2**30:.1f} GiB (weights and activations), more than "
                f"a quarter of the free memory ({available_bytes / 2**30:.1f} GiB). Choose smaller sizes or fewer blocks.")

    def memory_bytes(self) -> int:
        """Weights plus the largest activations of a forward pass, in fp32."""
        weights = formula_total(self) * 4
        tokens = self.batch * self.seq_len
        activations = tokens * max(self.embed_dim, self.ffn_dim) * 4 * 4
        scores = self.batch * self.num_heads * self.seq_len * self.seq_len * 4 * 2
        return weights + activations + scores


@dataclass(frozen=True)
class ComponentCount:
    """One component of the built stack: its count by formula and as measured on the module."""

    component: str
    formula: str  # in E and F, per block
    substituted: str  # the same with the numbers filled in
    per_block: int  # the formula's value
    formula_total: int  # per_block × blocks
    measured: int  # sum(p.numel()) over these modules of every block


@dataclass(frozen=True)
class LoadedComponent:
    """One component of the loaded model's first block."""

    component: str
    built_per_block: int
    loaded: int
    matrices: str  # the loaded component's weight shapes, e.g. 'q_proj [576, 576], k_proj [192, 576]'


@dataclass(frozen=True)
class BlockComparison:
    model_title: str
    block_path: str
    block_class: str
    rows: tuple[LoadedComponent, ...]
    loaded_total: int
    built_total: int  # one built block
    notes: tuple[str, ...]


@dataclass(frozen=True)
class BuiltBlock:
    spec: BlockSpec
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    components: tuple[ComponentCount, ...]
    measured_total: int  # sum(p.numel() for p in module.parameters())
    formula_total: int
    forward_ms: float
    output_mean: float
    output_std: float
    module_text: str  # print(block), as the notebook shows
    comparison: BlockComparison | None = None
    comparison_note: str = ""
    trainable: int = 0


# ------------------------------------------------------------------ the closed form


def component_formulas(spec: BlockSpec) -> list[tuple[str, str, str, int]]:
    """(component, formula, substituted, value) per block."""
    e, f = spec.embed_dim, spec.ffn_dim
    return [
        ("attention", "4E² + 4E", f"4·{e}² + 4·{e}", 4 * e * e + 4 * e),
        ("feed-forward", "2EF + F + E", f"2·{e}·{f} + {f} + {e}", 2 * e * f + f + e),
        ("norms", "4E", f"4·{e}", 4 * e),
    ]


#: Where each formula comes from (shown beside the counts).
FORMULA_WHY = {
    "attention": "Q, K, V and output projections: 4 matrices E×E and 4 bias vectors of E",
    "feed-forward": "Linear E→F (E·F weights + F biases), then Linear F→E (F·E + E)",
    "norms": "2 LayerNorms, each E scales + E shifts",
}


def formula_per_block(spec: BlockSpec) -> int:
    return sum(v for *_, v in component_formulas(spec))


def formula_total(spec: BlockSpec) -> int:
    return formula_per_block(spec) * spec.num_blocks


def _component_of_built(name: str) -> str:
    """Parameter name inside a SimpleTransformerBlock -> component."""
    if name.startswith("attention."):
        return "attention"
    if name.startswith("feed_forward."):
        return "feed-forward"
    return "norms"


# ------------------------------------------------------------------ building and running


def build_and_run(spec: BlockSpec, ctx: "TaskContext", seed: int = 0) -> BuiltBlock:
    """Build the stack on the CPU, run a random [batch, seq, E] input through it, count its parameters."""
    import psutil
    import torch

    from .simple_transformer import SimpleTransformer

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


def compare_with_loaded(built: BuiltBlock, loaded: "LoadedModel", tree: "ModuleTree") -> BlockComparison | None:
    """The built block beside the loaded model's first block, component by component."""
    from .architecture import block_index
    from .structure import component_of

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


def _difference_notes(spec: BlockSpec, loaded: "LoadedModel", facts: dict, block_class: str) -> list[str]:
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
