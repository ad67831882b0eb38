"""What the architecture view shows: a model's configuration in one table, the families
table, and the bundled models side by side.  Frozen types; no torch.

The architecture families (GPT-style, BERT-style, T5-style, MoE) are data in
resources/architectures.json, from the notebook's comparison cell.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import LlmvizError
from .formatting import bytes_text
from .paths import resource

if TYPE_CHECKING:  # pandas is imported when a table is made, not when the window starts
    import pandas as pd

FAMILIES = ("decoder-only", "encoder-only", "encoder-decoder", "mixture-of-experts")
PRECISIONS = (("fp32", 32), ("fp16 / bf16", 16), ("int8", 8), ("int4", 4))


@dataclass(frozen=True)
class Family:
    """One row of the notebook's architecture comparison."""

    key: str  # one of FAMILIES
    name: str
    attention: str
    strengths: tuple[str, ...]
    weaknesses: tuple[str, ...]
    use_cases: tuple[str, ...]
    examples: tuple[str, ...]


def load_families() -> tuple[Family, ...]:
    """The families table from resources/architectures.json."""
    path = resource("architectures.json")
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["families"]
        return tuple(Family(r["key"], r["name"], r["attention"], *(tuple(r[k]) for k in
                                                                   ("strengths", "weaknesses", "use_cases", "examples")))
                     for r in rows)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LlmvizError(f"The architecture families table {path} is missing or damaged ({exc}).") from exc


@dataclass(frozen=True)
class ArchitectureSummary:
    """A model's architecture facts, from its config and its modules."""

    title: str
    architecture: str
    model_type: str
    family: str  # one of FAMILIES
    base_family: str  # decoder-only / encoder-only / encoder-decoder (MoE models have one too)
    layers: int
    hidden_size: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn_size: int | None
    ffn_activation: str
    gated_ffn: bool
    vocab_size: int
    context_length: int | None
    position_encoding: str  # 'RoPE', 'learned absolute', 'sinusoidal', 'relative bias', 'ALiBi', 'none found'
    rope_theta: float | None
    tied_embeddings: bool
    norm: str  # class of the blocks' norm, e.g. 'LlamaRMSNorm'
    norm_placement: str  # 'pre-norm' / 'post-norm' / ''
    experts: int = 0
    experts_per_token: int = 0
    total_params: int = 0
    per_use_params: int = 0  # shared weights counted at every use (what torchinfo totals)
    components: tuple[tuple[str, int], ...] = ()
    dtype: str = ""
    source: str = ""
    measured_on: str = ""  # 'loaded weights' or 'meta device (config only)'

    def weight_bytes(self, bits: int) -> int:
        """Bytes to hold every parameter at `bits` per weight (weights only: no scales, no activations)."""
        return self.total_params * bits // 8

    @property
    def position_text(self) -> str:
        if self.position_encoding == "RoPE" and self.rope_theta:
            return f"RoPE (rotary), θ = {self.rope_theta:,.0f}"
        return self.position_encoding

    @property
    def gqa_text(self) -> str:
        if not self.heads or self.kv_heads == self.heads:
            return f"{self.kv_heads} (one per query head: multi-head attention)"
        if self.kv_heads == 1:
            return "1 (multi-query attention)"
        return f"{self.kv_heads} (grouped-query: {self.heads // max(1, self.kv_heads)} query heads share each)"

    def rows(self) -> list[tuple[str, str, str]]:
        """(field, value, what it means) for the Config table."""
        ffn = "—" if not self.ffn_size else (
            f"{self.ffn_size:,} ({self.ffn_size / max(1, self.hidden_size):.2f} × hidden)"
            + (f", gated {self.ffn_activation}" if self.gated_ffn else f", {self.ffn_activation}"))
        family = self.family if self.family == self.base_family else f"{self.family} ({self.base_family})"
        if self.experts:
            family += f", {self.experts} experts, {self.experts_per_token or '?'} per token"
        out = [
            ("Architecture family", family, "decoder-only: GPT-style, causal; encoder-only: BERT-style, bidirectional"),
            ("Model class", self.architecture, f"transformers model_type '{self.model_type}'"),
            ("Layers (blocks)", f"{self.layers}", "transformer blocks stacked one after another"),
            ("Hidden size", f"{self.hidden_size:,}", "width of every token's vector between blocks"),
            ("Attention heads", f"{self.heads}", "query heads per attention layer"),
            ("KV heads", self.gqa_text, "key/value heads; fewer than query heads shrinks the KV cache"),
            ("Head dimension", f"{self.head_dim}", "width of each head's query/key/value"),
            ("FFN size", ffn, "inner width of each block's feed-forward network"),
            ("Vocabulary", f"{self.vocab_size:,}", "tokens the embedding table has rows for"),
            ("Context length", f"{self.context_length:,}" if self.context_length else "not declared",
             "longest input the position encoding was configured for"),
            ("Position encoding", self.position_text, "how the model knows token order"),
            ("Tied embeddings", "yes: the output head reuses the input embedding" if self.tied_embeddings else "no",
             "tied weights are counted once"),
            ("Normalization", f"{self.norm}, {self.norm_placement}" if self.norm_placement else (self.norm or "—"),
             "pre-norm normalizes a block's input; post-norm its output (the original Transformer, BERT)"),
            ("Total parameters", f"{self.total_params:,}", "unique weights" + (
                f"; {self.per_use_params:,} if shared weights are counted at each use (as torchinfo does)"
                if self.per_use_params != self.total_params else "")),
        ]
        for name, n in self.components:
            share = 100.0 * n / self.total_params if self.total_params else 0.0
            percent = f"{share:.1f} %" if share >= 0.1 else "< 0.1 %"
            out.append((f"  {name}", f"{n:,} ({percent})", "parameters in this part of the network"))
        for label, bits in PRECISIONS:
            out.append((f"Weights at {label}", bytes_text(self.weight_bytes(bits)),
                        f"{self.total_params:,} × {bits} bits; quantized checkpoints add a few % for scales"))
        return out

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.rows(), columns=["field", "value", "meaning"])



@dataclass(frozen=True)
class FamiliesComparison:
    """The families table, and the bundled models side by side with their real numbers."""

    families: tuple[Family, ...]
    models: tuple[ArchitectureSummary, ...]
    loaded_family: str | None  # the loaded model's family (highlighted), None without a model
    loaded_source: str | None

    def side_by_side(self) -> pd.DataFrame:
        """One row per fact, one column per model."""
        import pandas as pd

        facts: dict[str, list[str]] = {}
        for summary in self.models:
            for name, value, _ in summary.rows():
                facts.setdefault(name.strip(), []).append(value)
        width = len(self.models)
        rows = {k: v for k, v in facts.items() if len(v) == width}
        return pd.DataFrame(list(rows.values()), index=list(rows), columns=[m.title for m in self.models])

    def families_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([{
            "family": f.key, "architecture": f.name, "attention": f.attention,
            "strengths": ", ".join(f.strengths), "weaknesses": ", ".join(f.weaknesses),
            "use_cases": ", ".join(f.use_cases), "examples": ", ".join(f.examples),
        } for f in self.families])
