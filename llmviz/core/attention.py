"""Attention maps from a trace's capture, computed on demand (on the worker thread).

`head_map` recomputes one head exactly as transformers' eager attention does:
softmax(q k^T * scaling + mask) in float32, with grouped-query heads sharing keys.
Work is done in row blocks so a long context never holds more than a slab of scores.
"""

from __future__ import annotations

import numpy as np
import torch

from .results import AttentionCapture

ROW_BLOCK = 1024


def _check(cap: AttentionCapture, layer: int, head: int) -> None:
    if not 0 <= layer < cap.num_layers:
        raise IndexError(f"layer {layer} out of range (model has {cap.num_layers})")
    if not 0 <= head < cap.num_heads:
        raise IndexError(f"head {head} out of range (model has {cap.num_heads})")


def head_scores_rows(cap: AttentionCapture, layer: int, head: int, start: int, stop: int) -> torch.Tensor:
    """Attention probabilities of query rows [start, stop) for one head: float32 [rows, T]."""
    _check(cap, layer, head)
    if cap.method == "weights":
        return torch.from_numpy(np.ascontiguousarray(cap.weights[layer][head, start:stop], dtype=np.float32))
    q = torch.from_numpy(cap.queries[layer][head, start:stop]).float()
    k = torch.from_numpy(cap.keys[layer][cap.kv_head(head)]).float()
    scores = (q @ k.T) * cap.scaling[layer]
    softcap = cap.softcap[layer] if cap.softcap else None
    if softcap:
        scores = torch.tanh(scores / softcap) * softcap
    bias = cap.biases[layer] if cap.biases else None
    mask = cap.masks[layer] if cap.masks else None
    if bias is not None:
        b = bias[head if bias.shape[0] > 1 else 0, start:stop]
        scores = scores + torch.from_numpy(b)
    elif mask is not None:
        scores = scores.masked_fill(~torch.from_numpy(mask[start:stop]), float("-inf"))
    elif cap.causal[layer]:
        t = k.shape[0]
        rows = torch.arange(start, stop).unsqueeze(1)
        scores = scores.masked_fill(torch.arange(t).unsqueeze(0) > rows, float("-inf"))
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
    return torch.nan_to_num(probs, nan=0.0)  # a fully masked row attends nowhere


def head_map(cap: AttentionCapture, layer: int, head: int) -> np.ndarray:
    """The exact T x T map of one head, float32."""
    t = cap.num_tokens
    out = np.empty((t, t), dtype=np.float32)
    for start in range(0, t, ROW_BLOCK):
        stop = min(t, start + ROW_BLOCK)
        out[start:stop] = head_scores_rows(cap, layer, head, start, stop).numpy()
    return out


def layer_maps(cap: AttentionCapture, layer: int) -> np.ndarray:
    """All heads of one layer: float32 [H, T, T]."""
    return np.stack([head_map(cap, layer, h) for h in range(cap.num_heads)])


def all_maps(cap: AttentionCapture, layers: list[int] | None = None) -> np.ndarray:
    """float32 [len(layers), H, T, T] (the export format); callers check the size first."""
    layers = list(range(cap.num_layers)) if layers is None else layers
    t = cap.num_tokens
    out = np.empty((len(layers), cap.num_heads, t, t), dtype=np.float32)
    for i, layer in enumerate(layers):
        for h in range(cap.num_heads):
            out[i, h] = head_map(cap, layer, h)
    return out
