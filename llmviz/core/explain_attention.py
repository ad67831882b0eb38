"""Attention-based attributions at the target row: attention rollout and the value-weighted norm.

Both come from one forward pass that records each layer's queries, keys and values
(capture.py).  Rollout reuses the attention explorer's `rollout_row`, so the dock and the
explorer agree token for token.  The value-weighted norm (Kobayashi et al. 2020) is
‖Σ_h α^h_ij f^h(x_j)‖ with f^h(x_j) = v^h_j W_O^h, the part of the attention output that
token j contributes: a large weight on a tiny vector (the first-token "sink" is the usual
case) counts for little.  For a decoder the row i is the explained position; for an
encoder's sentence embedding (the mean over positions) it is the mean of the rows, which
is exact because f is linear in α.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import attention as A
from .capture import Recorder, recording
from .errors import LlmvizError
from .models import LoadedModel
from .tasks import TaskContext
from .trace import forward_inputs
from .trace_data import AttentionCapture


def capture_with_values(loaded: LoadedModel, ids: np.ndarray) -> tuple[AttentionCapture, list[dict[str, Any]]]:
    """One forward pass over `ids` recording q, k and v; returns the capture and the raw layers."""
    info = loaded.info
    if info.is_encoder_decoder:
        raise LlmvizError("Attention attributions cover decoder-only and encoder-only models.")
    recorder = Recorder(keep_values=True)
    kwargs = forward_inputs(loaded, ids)
    kwargs.update(use_cache=False, return_dict=True)
    if info.is_decoder:
        kwargs["logits_to_keep"] = 1
    with torch.inference_mode(), recording(recorder):
        try:
            loaded.model(**kwargs)
        except TypeError:
            kwargs.pop("logits_to_keep", None)
            loaded.model(**kwargs)
    if not recorder.layers:
        raise LlmvizError(f"{info.architecture} does not route attention through transformers' attention "
                          "interface, so its attention cannot be captured for rollout or value norms.")
    cap = recorder.to_capture(info.num_heads, info.num_kv_heads)
    heads = cap.queries[0].shape[0]
    if heads != info.num_heads:
        cap = AttentionCapture(**{**cap.__dict__, "num_heads": heads, "num_kv_heads": cap.keys[0].shape[0]})
    return cap, [recorder.layers[i] for i in sorted(recorder.layers)]


def target_rows(cap: AttentionCapture, is_decoder: bool) -> np.ndarray:
    """Query rows the target reads: the last position (decoders) or all of them (mean-pooled encoders)."""
    n = cap.num_tokens
    return np.array([n - 1]) if is_decoder else np.arange(n)


def rollout_attribution(cap: AttentionCapture, is_decoder: bool, ctx: TaskContext | None = None) -> np.ndarray:
    """The rollout row of the target (the attention explorer's), or the mean of all rows: float64 [n]."""
    if is_decoder:
        return A.rollout_row(cap, cap.num_tokens - 1, ctx).astype(np.float64)
    return A.rollout(cap, ctx).mean(0).astype(np.float64)


def output_projection(module: torch.nn.Module, head: int, head_dim: int) -> torch.Tensor | None:
    """W_O^h as [head_dim, D] (v^h_j @ it is head h's output for token j), or None if the
    attention module holds no output projection (BERT keeps it in a sibling module)."""
    o_proj = getattr(module, "o_proj", None)
    if isinstance(o_proj, torch.nn.Linear):
        return o_proj.weight[:, head * head_dim:(head + 1) * head_dim].T
    c_proj = getattr(module, "c_proj", None)  # GPT-2's Conv1D: weight [in, out]
    if c_proj is not None and type(c_proj).__name__ == "Conv1D":
        return c_proj.weight[head * head_dim:(head + 1) * head_dim]
    return None


def value_norms(cap: AttentionCapture, layers: list[dict[str, Any]], is_decoder: bool,
                ctx: TaskContext | None = None) -> tuple[np.ndarray, bool]:
    """‖Σ_h α^h_ij f^h(x_j)‖ at the target row, per layer: (float32 [L, n], whether W_O was used).

    Without an output projection in the attention module the heads' α v vectors are
    concatenated instead (the norm of the concatenation)."""
    n = cap.num_tokens
    rows = target_rows(cap, is_decoder)
    out = np.zeros((cap.num_layers, n), dtype=np.float32)
    with_wo = True
    with torch.inference_mode():
        for layer in range(cap.num_layers):
            if ctx is not None:
                ctx.progress("Value-weighted attention norms", layer / cap.num_layers, f"layer {layer + 1}")
            alpha = A.HeadProbs(cap, layer, range(cap.num_heads)).rows(rows).mean(1).double()  # [H, n]
            values = layers[layer]["v"].double()  # [KV, n, d]
            module = layers[layer]["module"]
            head_dim = values.shape[-1]
            total: torch.Tensor | None = None
            squares = torch.zeros(n, dtype=torch.float64)
            for h in range(cap.num_heads):
                v = values[cap.kv_head(h)] * alpha[h][:, None]  # [n, d]
                w_o = output_projection(module, h, head_dim)
                if w_o is None:
                    with_wo = False
                    squares += (v ** 2).sum(-1)
                    continue
                part = v @ w_o.double()
                total = part if total is None else total + part
            out[layer] = (total.norm(dim=-1) if total is not None else squares.sqrt()).float().numpy()
    return out, with_wo


def layer_mean(norms: np.ndarray) -> np.ndarray:
    """One score per token: each layer's norms scaled to sum to 1, averaged over layers."""
    sums = norms.sum(-1, keepdims=True)
    return (norms / np.where(sums > 0, sums, 1.0)).mean(0).astype(np.float64)
