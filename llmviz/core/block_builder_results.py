"""Build a transformer block (the notebook's SimpleTransformerBlock), run it, and count its parameters.

The counts come two ways and must agree: `sum(p.numel())` over the torch module that was
built, and the closed-form formula per component (E = embed dim, F = FFN dim):

    attention  (nn.MultiheadAttention)  in_proj 3·E·E + 3·E, out_proj E·E + E  = 4E² + 4E
    feed-forward (Linear, ReLU, Linear)  E·F + F + F·E + E                     = 2EF + F + E
    norms      (two LayerNorms)          2 × (E scale + E shift)               = 4E

One block of the loaded model is then set beside it, component by component, with the
reasons the numbers differ (grouped-query attention, gated FFN, no biases, RMSNorm).

These are the builder's settings and results, and the closed-form counts: frozen types, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError

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

