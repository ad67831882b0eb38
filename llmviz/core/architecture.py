"""What kind of transformer a model is: its configuration in one table, and the families table.

`summarize(model, config, ...)` reads the facts the notebook printed for GPT-2 (layers,
hidden size, heads, vocabulary, parameters) plus what distinguishes modern models (KV
heads, FFN size and gating, position encoding, tied embeddings, norm type and placement)
and the memory the weights need at each precision.  It runs on the worker (it needs the
module tree); the result types here are torch-free for the views.

The architecture families (GPT-style, BERT-style, T5-style, MoE) are data in
resources/architectures.json, from the notebook's comparison cell.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .formatting import bytes_text
from .paths import resource

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from .structure import ModuleTree

FAMILIES = ("decoder-only", "encoder-only", "encoder-decoder", "mixture-of-experts")
PRECISIONS = (("fp32", 32), ("fp16 / bf16", 16), ("int8", 8), ("int4", 4))
_EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
_EXPERTS_PER_TOKEN_KEYS = ("num_experts_per_tok", "moe_top_k", "top_k", "num_selected_experts")


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
        from .errors import LlmvizError

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

    def to_frame(self) -> "pd.DataFrame":
        import pandas as pd

        return pd.DataFrame(self.rows(), columns=["field", "value", "meaning"])


# ------------------------------------------------------------------ reading a config


def _first(config: Any, *names: str) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return None


def experts_of(config: Any) -> tuple[int, int]:
    """(number of experts, experts used per token); (0, 0) for dense models."""
    experts = _first(config, *_EXPERT_KEYS)
    if not isinstance(experts, int) or experts <= 1:
        return 0, 0
    per_token = _first(config, *_EXPERTS_PER_TOKEN_KEYS)
    return experts, int(per_token) if isinstance(per_token, int) else 0


def rope_theta_of(config: Any) -> float | None:
    """RoPE's base θ from transformers 5's rope_parameters (or older rope_theta); None without RoPE."""
    params = getattr(config, "rope_parameters", None)
    if isinstance(params, dict):
        if "rope_theta" in params:
            return float(params["rope_theta"])
        nested = [v.get("rope_theta") for v in params.values() if isinstance(v, dict) and "rope_theta" in v]
        if nested:
            return float(nested[0])
    theta = getattr(config, "rope_theta", None)
    return float(theta) if theta is not None else None


def position_encoding_of(config: Any, tree: "ModuleTree") -> str:
    """How the model encodes positions, from the config and the module names it actually has."""
    if rope_theta_of(config) is not None or getattr(config, "rotary_dim", None) or getattr(config, "rotary_pct", None):
        return "RoPE"
    if getattr(config, "alibi", False) or getattr(config, "position_embedding_type", "") == "alibi":
        return "ALiBi"
    for path, cls in zip(tree.paths, tree.classes):
        last = path.rsplit(".", 1)[-1]
        if last in ("position_embeddings", "wpe", "embed_positions", "pos_embed"):
            return "sinusoidal (fixed)" if "sinusoidal" in cls.lower() else "learned absolute"
    if getattr(config, "relative_attention_num_buckets", None):
        return "relative position bias"
    if any("rotary" in c.lower() for c in tree.classes):
        return "RoPE"
    return "none found"


def family_of(config: Any, is_decoder: bool, is_encoder_decoder: bool) -> tuple[str, str]:
    """(family, base family): MoE when the config declares experts, else by attention direction."""
    base = "encoder-decoder" if is_encoder_decoder else ("decoder-only" if is_decoder else "encoder-only")
    experts, _ = experts_of(config)
    return ("mixture-of-experts" if experts else base), base


_PRE_NORM_NAMES = ("input_layernorm", "ln_1", "ln1", "attention_norm", "pre_attention", "layer_norm1")


def norm_facts(tree: "ModuleTree", block: int, first_called: int | None = None) -> tuple[str, str]:
    """(norm class, placement) of a block.

    With `first_called` (the first module with weights that ran in the block, measured by a
    hook) the placement is measured: pre-norm when that module is a norm.  Without it (a
    model on the meta device) it is read from names: Llama's input_layernorm and GPT-2's ln_1
    normalize a block's input; BERT keeps its LayerNorms inside the output sub-modules.
    """
    if block < 0:
        return "", ""
    end = block + 1
    while end < len(tree) and tree.depth[end] > tree.depth[block]:
        end += 1
    norms = [i for i in range(block + 1, end) if "norm" in tree.classes[i].lower()]
    if not norms:
        return "", ""
    norm = tree.classes[norms[0]]
    if first_called is not None:
        return norm, ("pre-norm" if first_called in norms else "post-norm") + " (measured)"
    names = {tree.name(i).lower() for i in norms if int(tree.parent[i]) == block}
    if names & set(_PRE_NORM_NAMES):
        return norm, "pre-norm (from module names)"
    if not names:
        return norm, "post-norm (from module names)"
    return norm, ""


def block_index(tree: "ModuleTree", num_layers: int) -> int:
    """Tree node of the first transformer block: child 0 of the largest container with num_layers children."""
    best, best_n = -1, 0
    for i, cls in enumerate(tree.classes):
        n = tree.num_children(i)
        if cls == "ModuleList" and n == num_layers and n > best_n:
            best, best_n = tree.child(i, 0), n
    return best


def summarize(model: "torch.nn.Module", config: Any, *, title: str, source: str, is_decoder: bool,
              is_encoder_decoder: bool, tree: "ModuleTree | None" = None, measured_on: str = "loaded weights",
              first_called: int | None = None) -> ArchitectureSummary:
    """Everything the Config tab shows, for one model (real or built on the meta device).

    `first_called`: tree node of the first module with weights that ran in the first block
    (see `structure_jobs.first_module_called`), to tell pre- from post-norm by measurement.
    """
    from .structure import module_tree, params_by_component

    tree = tree or module_tree(model)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = int(_first(text, "num_attention_heads", "n_head", "num_heads") or 0)
    hidden = int(_first(text, "hidden_size", "n_embd", "d_model") or 0)
    layers = int(_first(text, "num_hidden_layers", "n_layer", "num_layers") or 0)
    ffn = _first(text, "intermediate_size", "n_inner", "d_ff", "ffn_dim", "encoder_ffn_dim")
    if ffn is None and getattr(text, "model_type", "") in ("gpt2", "gpt_neo", "gptj"):
        ffn = 4 * hidden  # GPT-2 leaves n_inner unset and uses 4 x n_embd
    activation = str(_first(text, "hidden_act", "activation_function", "feed_forward_proj", "dense_act_fn") or "")
    family, base = family_of(text, is_decoder, is_encoder_decoder)
    experts, per_token = experts_of(text)
    block = block_index(tree, layers)
    norm, placement = norm_facts(tree, block, first_called)
    tied = bool(tree.tied_pairs())
    components = params_by_component(tree)
    return ArchitectureSummary(
        title=title,
        architecture=type(model).__name__,
        model_type=str(getattr(config, "model_type", "")),
        family=family,
        base_family=base,
        layers=layers,
        hidden_size=hidden,
        heads=heads,
        kv_heads=int(_first(text, "num_key_value_heads", "num_kv_heads") or heads),
        head_dim=int(_first(text, "head_dim") or (hidden // heads if heads else 0)),
        ffn_size=int(ffn) if ffn else None,
        ffn_activation=activation,
        gated_ffn=_is_gated(tree, block),
        vocab_size=int(_first(text, "vocab_size") or 0),
        context_length=_first(text, "max_position_embeddings", "n_positions", "max_seq_len", "n_ctx"),
        position_encoding=position_encoding_of(text, tree),
        rope_theta=rope_theta_of(text),
        tied_embeddings=tied,
        norm=norm,
        norm_placement=placement,
        experts=experts,
        experts_per_token=per_token,
        total_params=tree.total,
        per_use_params=int(tree.per_use_params[0]) if len(tree) else 0,
        components=tuple((k, v) for k, v in components.items() if v),
        dtype=_joined_dtypes(tree),
        source=source,
        measured_on=measured_on,
    )


_GATE_NAMES = ("gate_proj", "gate_up", "wi_0", "w3")


def _is_gated(tree: "ModuleTree", block: int) -> bool:
    """A gated FFN (SwiGLU/GeGLU) has a gate projection beside up and down: three matrices, not two."""
    if block < 0:
        return False
    from .structure import component_of

    base = tree.paths[block] + "."
    matrices = 0
    for i in range(block + 1, len(tree)):
        if tree.depth[i] <= tree.depth[block]:
            break
        sub = tree.paths[i][len(base):]
        if component_of(sub, tree.classes[i]) != "feed-forward":
            continue
        if any(name in sub for name in _GATE_NAMES):
            return True
        if "expert" not in sub:
            matrices += sum(1 for p in tree.params[i] if len(p.shape) == 2)
    return matrices >= 3


def _joined_dtypes(tree: "ModuleTree") -> str:
    return ", ".join(sorted({d for d in tree.dtypes if d}))


@dataclass(frozen=True)
class FamiliesComparison:
    """The families table, and the bundled models side by side with their real numbers."""

    families: tuple[Family, ...]
    models: tuple[ArchitectureSummary, ...]
    loaded_family: str | None  # the loaded model's family (highlighted), None without a model
    loaded_source: str | None

    def side_by_side(self) -> "pd.DataFrame":
        """One row per fact, one column per model."""
        import pandas as pd

        facts: dict[str, list[str]] = {}
        for summary in self.models:
            for name, value, _ in summary.rows():
                facts.setdefault(name.strip(), []).append(value)
        width = len(self.models)
        rows = {k: v for k, v in facts.items() if len(v) == width}
        return pd.DataFrame(list(rows.values()), index=list(rows), columns=[m.title for m in self.models])

    def families_frame(self) -> "pd.DataFrame":
        import pandas as pd

        return pd.DataFrame([{
            "family": f.key, "architecture": f.name, "attention": f.attention,
            "strengths": ", ".join(f.strengths), "weaknesses": ", ".join(f.weaknesses),
            "use_cases": ", ".join(f.use_cases), "examples": ", ".join(f.examples),
        } for f in self.families])
