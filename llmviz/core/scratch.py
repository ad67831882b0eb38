"""Attention from scratch: the course notebook's SimpleAttention, step by step, then one real head.

The toy walk-through builds the notebook's module (three nn.Linear layers) with a seed
and shows every intermediate matrix.  The real-head walk-through takes the loaded
model's own post-RoPE q and k of one head (from the trace's capture), and the head's
values from one extra forward pass through a recording attention function, and ends in
exactly the map the head view draws.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from .attention_jobs import clamp_selection
from .attention_results import WalkStep, Walkthrough
from .errors import InputError, LlmvizError
from .session import Session
from .tasks import TaskContext
from .trace import forward_inputs

TOY_MAX_DIM = 128
TOY_MAX_LEN = 64
HEAD_WALK_MAX_TOKENS = 512
VALUES_IMPL = "llmviz_values"
_local = threading.local()


class SimpleAttention(nn.Module):
    """The notebook's single-head self-attention (no mask, scale sqrt(embed_dim))."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.query = nn.Linear(embed_dim, embed_dim)
        self.key = nn.Linear(embed_dim, embed_dim)
        self.value = nn.Linear(embed_dim, embed_dim)
        self.scale = embed_dim ** 0.5

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q, k, v = self.query(x), self.key(x), self.value(x)
        weights = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) / self.scale, dim=-1)
        return torch.matmul(weights, v), weights


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy())


def toy_module(embed_dim: int, seq_len: int, seed: int) -> tuple[SimpleAttention, torch.Tensor]:
    """The seeded module and input x [1, seq_len, embed_dim] (the global RNG is left untouched)."""
    if not 1 <= embed_dim <= TOY_MAX_DIM or not 1 <= seq_len <= TOY_MAX_LEN:
        raise InputError(f"Choose an embedding size of 1-{TOY_MAX_DIM} and a sequence length of 1-{TOY_MAX_LEN}.")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module = SimpleAttention(embed_dim).eval()
        x = torch.randn(1, seq_len, embed_dim)
    return module, x


def toy_walkthrough(session: Session | None, ctx: TaskContext, embed_dim: int = 8, seq_len: int = 6,
                    seed: int = 0) -> Walkthrough:
    """SimpleAttention on random input, every intermediate as a matrix."""
    module, x = toy_module(embed_dim, seq_len, seed)
    with torch.inference_mode():
        q, k, v = module.query(x)[0], module.key(x)[0], module.value(x)[0]
        scores = q @ k.T / module.scale
        weights = torch.softmax(scores, dim=-1)
        output = weights @ v
    d = embed_dim
    steps = (
        WalkStep("x", f"x: random input [{seq_len} × {d}]", _np(x[0]), "tokens", "dims", True),
        WalkStep("Q", "Q = x W_q + b_q", _np(q), "tokens", "dims", True),
        WalkStep("K", "K = x W_k + b_k", _np(k), "tokens", "dims", True),
        WalkStep("V", "V = x W_v + b_v", _np(v), "tokens", "dims", True),
        WalkStep("scores", f"scores = Q Kᵀ / √{d}", _np(scores), "tokens", "tokens", True),
        WalkStep("weights", "weights = softmax(scores)", _np(weights), "tokens", "tokens", False),
        WalkStep("output", "output = weights V", _np(output), "tokens", "dims", True),
    )
    return Walkthrough("toy", f"SimpleAttention(embed_dim={d}), sequence length {seq_len}, seed {seed}", steps)


# ------------------------------------------------------------------ one real head


class _ValueRecorder:
    def __init__(self, layer: int) -> None:
        self.layer = layer
        self.calls = 0
        self.value: torch.Tensor | None = None
        self.output: torch.Tensor | None = None


def _record_values(module, query, key, value, attention_mask, **kwargs):
    out = sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    rec: _ValueRecorder | None = getattr(_local, "recorder", None)
    if rec is not None and query.shape[-2] == key.shape[-2] and not getattr(module, "is_cross_attention", False):
        index = getattr(module, "layer_idx", None)
        index = index if isinstance(index, int) else rec.calls
        rec.calls += 1
        if index == rec.layer:
            rec.value, rec.output = value[0].detach(), out[0][0].detach()  # [KV, T, d], [T, H, d]
    return out


AttentionInterface.register(VALUES_IMPL, _record_values)


def head_values(session: Session, ids: np.ndarray, layer: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Values [KV, T, d] and per-head attention outputs [T, H, d] of one layer, from one extra forward.

    The model's attention function is switched to a recording copy of sdpa for this pass
    only; None when the model cannot switch (models loaded with eager attention).
    """
    loaded = session.require_model()
    model = loaded.model
    previous = model.config._attn_implementation
    if loaded.info.capture != "qk" or not model._can_set_attn_implementation():
        return None
    module = model.get_encoder() if loaded.info.is_encoder_decoder else model
    kwargs: dict[str, Any] = dict(forward_inputs(loaded, ids), use_cache=False)
    if loaded.info.is_decoder:
        kwargs["logits_to_keep"] = 1
    recorder = _ValueRecorder(layer)
    model.set_attn_implementation(VALUES_IMPL)
    _local.recorder = recorder
    try:
        with torch.inference_mode():
            module(**kwargs)
    finally:
        _local.recorder = None
        model.set_attn_implementation(previous)
    if recorder.value is None or recorder.output is None:
        return None
    return recorder.value.float().cpu(), recorder.output.float().cpu()


def head_walkthrough(session: Session, ctx: TaskContext, trace_id: int, layer: int = 0, head: int = 0) -> Walkthrough:
    """q, k (the model's own, after RoPE), scores, mask, softmax, V and output of one real head."""
    trace = session.require_trace(trace_id)
    cap = trace.capture
    if cap is None:
        raise LlmvizError(trace.attention_note or "This model's attention was not captured.")
    if cap.method != "qk":
        raise LlmvizError("This model was loaded with eager attention, which gives the weights but not q and k; "
                          "the walk-through needs q and k.")
    t = trace.num_tokens
    if t > HEAD_WALK_MAX_TOKENS:
        raise LlmvizError(f"The walk-through shows every matrix of a head, for texts up to {HEAD_WALK_MAX_TOKENS} "
                          f"tokens (this one has {t:,}). The Attention dock shows any head of the long text.")
    layer, head = clamp_selection(cap, layer, head)
    kv = cap.kv_head(head)
    ctx.progress("Walking through one head", 0.0)
    q = torch.from_numpy(cap.queries[layer][head])
    k = torch.from_numpy(cap.keys[layer][kv])
    s = cap.scaling[layer]
    d = q.shape[-1]
    scores = (q @ k.T) * s
    softcap = cap.softcap[layer] if cap.softcap else None
    if softcap:
        scores = torch.tanh(scores / softcap) * softcap
    bias = cap.biases[layer] if cap.biases else None
    mask = cap.masks[layer] if cap.masks else None
    if bias is not None:
        masked, mask_text = scores + torch.from_numpy(bias[head if bias.shape[0] > 1 else 0]), "scores + position bias"
    elif mask is not None:
        masked, mask_text = scores.masked_fill(~torch.from_numpy(mask), float("-inf")), "mask: −∞ where not allowed"
    elif cap.causal[layer]:
        later = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        masked, mask_text = scores.masked_fill(later, float("-inf")), "causal mask: −∞ above the diagonal"
    else:
        masked, mask_text = scores, "no mask (attends both ways)"
    weights = torch.softmax(masked, dim=-1)
    gqa = f" (KV head {kv}, shared by {cap.num_heads // max(1, cap.num_kv_heads)})" \
        if cap.num_kv_heads != cap.num_heads else ""
    steps = [
        WalkStep("Q", f"q: the model's query [{t} × {d}]", _np(q), "tokens", "dims", True),
        WalkStep("K", f"k: key{gqa}", _np(k), "tokens", "dims", True),
        WalkStep("scores", f"scores = q kᵀ × {s:.4g}" + (" (= 1/√d)" if abs(s - d ** -0.5) < 1e-6 else ""),
                 _np(scores), "tokens", "tokens", True),
        WalkStep("masked", mask_text, _np(masked), "tokens", "tokens", True),
        WalkStep("weights", "weights = softmax: the head view's map", _np(weights), "tokens", "tokens", False),
    ]
    note = ""
    ctx.progress("Walking through one head: values", 0.5)
    values = head_values(session, trace.tokens.ids, layer)
    if values is not None:
        v = values[0][kv]
        steps.insert(2, WalkStep("V", f"v: value{gqa}", _np(v), "tokens", "dims", True))
        steps.append(WalkStep("output", "output = weights v",
                              _np(weights @ v), "tokens", "dims", True))
    else:
        note = "This model's values could not be recorded, so V and the output are not shown."
    title = f"{trace.model_title}: layer {layer}, head {head}, {t} tokens"
    return Walkthrough("head", title, tuple(steps), trace.id, layer, head, note)

