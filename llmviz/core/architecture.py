"""What kind of transformer a model is: its configuration in one table, and the families table.

`summarize(model, config, ...)` reads the facts the notebook printed for GPT-2 (layers,
hidden size, heads, vocabulary, parameters) plus what distinguishes modern models (KV
and the memory the weights need at each precision.  It runs in the engine (it needs the
module tree); the result types are in `architecture_results`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import AutoConfig

from .architecture_results import ArchitectureSummary
from .bundled import bundled_model, model_folder
from .models import LoadedModel, model_class
from .session import Session
from .structure import loaded_tree, module_tree
from .structure_results import ModuleTree, component_of, params_by_component
from .tasks import TaskContext
from .trace import forward_inputs, forward_module

_EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
_EXPERTS_PER_TOKEN_KEYS = ("num_experts_per_tok", "moe_top_k", "top_k", "num_selected_experts")


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


def position_encoding_of(config: Any, tree: ModuleTree) -> str:
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


def norm_facts(tree: ModuleTree, block: int, first_called: int | None = None) -> tuple[str, str]:
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


def block_index(tree: ModuleTree, num_layers: int) -> int:
    """Tree node of the first transformer block: child 0 of the largest container with num_layers children."""
    best, best_n = -1, 0
    for i, cls in enumerate(tree.classes):
        n = tree.num_children(i)
        if cls == "ModuleList" and n == num_layers and n > best_n:
            best, best_n = tree.child(i, 0), n
    return best


def summarize(model: torch.nn.Module, config: Any, *, title: str, source: str, is_decoder: bool,
              is_encoder_decoder: bool, tree: ModuleTree | None = None, measured_on: str = "loaded weights",
              first_called: int | None = None) -> ArchitectureSummary:
    """Everything the Config tab shows, for one model (real or built on the meta device).

    `first_called`: tree node of the first module with weights that ran in the first block
    (see `first_module_called`), to tell pre- from post-norm by measurement.
    """
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


def _is_gated(tree: ModuleTree, block: int) -> bool:
    """A gated FFN (SwiGLU/GeGLU) has a gate projection beside up and down: three matrices, not two."""
    if block < 0:
        return False
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


def _joined_dtypes(tree: ModuleTree) -> str:
    return ", ".join(sorted({d for d in tree.dtypes if d}))


# ------------------------------------------------------------------ the loaded and the bundled models


def first_module_called(loaded: LoadedModel, tree: ModuleTree, block: int) -> int | None:
    """Tree node of the first module with weights that runs in `block`, from a 2-token forward with hooks.

    None when the weights are on the meta device or the forward fails (the caller falls back to names).
    """
    if block < 0 or any(p.is_meta for p in loaded.model.parameters()):
        return None
    end = block + 1
    while end < len(tree) and tree.depth[end] > tree.depth[block]:
        end += 1
    order: list[int] = []

    def noting(i: int):
        def hook(*_args) -> None:
            order.append(i)
        return hook

    handles = [loaded.model.get_submodule(tree.paths[i]).register_forward_pre_hook(noting(i))
               for i in range(block + 1, end) if tree.own_params[i] or tree.tied(i)]
    ids = loaded.tokenizer("Hello world", add_special_tokens=True)["input_ids"][:2] or [0]
    kwargs = dict(forward_inputs(loaded, np.asarray(ids)), use_cache=False)
    try:
        with torch.inference_mode():
            forward_module(loaded)(**kwargs)
    except Exception:  # noqa: BLE001 - an unusual forward signature only costs the measured placement
        return None
    finally:
        for h in handles:
            h.remove()
    return order[0] if order else None


def loaded_summary(session: Session, ctx: TaskContext) -> ArchitectureSummary:
    """The loaded model's summary, computed once per model (kept in session.extras)."""
    summary = session.extras.get("structure.summary")
    if summary is None:
        loaded = session.require_model()
        info = loaded.info
        ctx.progress("Summarizing the architecture", None)
        tree = loaded_tree(session, ctx)
        first = first_module_called(loaded, tree, block_index(tree, info.num_layers))
        summary = session.extras["structure.summary"] = summarize(
            loaded.model, loaded.model.config, title=info.title, source=info.source, is_decoder=info.is_decoder,
            is_encoder_decoder=info.is_encoder_decoder, tree=tree, first_called=first)
    return summary


#: Bundled models' summaries by source: their configs never change, so each is built once per engine.
_BUNDLED_SUMMARIES: dict[str, ArchitectureSummary] = {}


def bundled_summary(source: str, ctx: TaskContext) -> ArchitectureSummary:
    """A bundled model's numbers from its config, built on the meta device (no weights read; exact counts)."""
    if source not in _BUNDLED_SUMMARIES:
        ctx.progress(f"Reading the configuration of {source}", None)
        config = AutoConfig.from_pretrained(model_folder(source, ctx), trust_remote_code=False)
        cls, is_decoder, is_enc_dec = model_class(config)
        with torch.device("meta"):
            model = cls.from_config(config)
        _BUNDLED_SUMMARIES[source] = summarize(
            model, config, title=bundled_model(source).title, source=source, is_decoder=is_decoder,
            is_encoder_decoder=is_enc_dec, measured_on="built from its config on the meta device")
    return _BUNDLED_SUMMARIES[source]
