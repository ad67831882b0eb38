"""Capture queries and keys during an sdpa-speed forward pass.

transformers 5 dispatches every attention call through `ALL_ATTENTION_FUNCTIONS`; llmviz
registers its own function under CAPTURE_IMPL and loads models with it.  Outside a
`recording()` block it is exactly sdpa.  Inside, it keeps each layer's post-RoPE query
and key tensors (and the mask), then calls sdpa, so a trace costs about what a plain
forward costs, while any head's map can be recomputed later from q and k.  The full
layers x heads x T x T tensor (72 GB for SmolLM2 at T = 8192) is never built.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from .trace_data import AttentionCapture

CAPTURE_IMPL = "llmviz_capture"
_local = threading.local()


class Recorder:
    """Collects per-layer attention inputs during one forward pass (on the worker thread)."""

    def __init__(self, keep_values: bool = False) -> None:
        self.layers: dict[int, dict[str, Any]] = {}
        #: Also keep each layer's value tensor and attention module (the explain dock's
        #: value-weighted norms need them; a trace does not, so by default they are dropped).
        self.keep_values = keep_values
        self._calls = 0
        self._mask_cache: dict[int, tuple[np.ndarray | None, np.ndarray | None]] = {}

    def record(self, module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, mask: Any, kwargs: dict,
               value: torch.Tensor | None = None) -> None:
        if getattr(module, "is_cross_attention", False) or query.shape[-2] != key.shape[-2]:
            return  # cross-attention, or a cached decoding step: not a self-attention map
        index = getattr(module, "layer_idx", None)
        if not isinstance(index, int) or index in self.layers:
            index = self._calls
        self._calls += 1
        scaling = kwargs.get("scaling")
        if scaling is None:
            scaling = query.shape[-1] ** -0.5
        is_causal = kwargs.get("is_causal")
        if is_causal is None:
            is_causal = getattr(module, "is_causal", True)
        allowed, bias = self._mask_arrays(mask, kwargs.get("position_bias"))
        self.layers[index] = {
            "q": query[0].detach(),
            "k": key[0].detach(),
            "scaling": float(scaling),
            "causal": bool(is_causal) and mask is None and query.shape[-2] > 1,
            "mask": allowed,
            "bias": bias,
            "softcap": kwargs.get("softcap"),
        }
        if self.keep_values and value is not None:
            self.layers[index]["v"] = value[0].detach()
            self.layers[index]["module"] = module

    def _mask_arrays(self, mask: Any, position_bias: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Turn transformers' mask (bool, or additive float) into a shared bool array or a bias."""
        if position_bias is not None:
            bias = position_bias[0].detach().to("cpu", torch.float32)
            if mask is not None:
                bias = bias + (mask[0].to("cpu", torch.float32) if mask.dtype != torch.bool
                               else torch.where(mask[0].cpu(), 0.0, float("-inf")))
            return None, bias.numpy()
        if mask is None or not isinstance(mask, torch.Tensor):
            return None, None
        key = id(mask)
        if key not in self._mask_cache:
            m = mask[0].detach().cpu()  # [1 or H, Q, K]
            if m.dtype == torch.bool:
                result = (m[0].numpy().copy(), None)
            else:
                m = m.float()
                floor = torch.finfo(mask.dtype).min / 2
                binary = bool(((m == 0) | (m <= floor)).all())
                result = ((m[0] > floor).numpy().copy(), None) if binary else (None, m.numpy().copy())
            self._mask_cache[key] = result
        return self._mask_cache[key]

    def to_capture(self, num_heads: int, num_kv_heads: int) -> AttentionCapture:
        """Numpy arrays (float32, on the CPU) of everything recorded, in layer order."""
        order = sorted(self.layers)
        rows = [self.layers[i] for i in order]
        as_np = lambda t: t.to("cpu", torch.float32).numpy()  # noqa: E731 (no copy for fp32 CPU tensors)
        return AttentionCapture(
            method="qk",
            num_heads=num_heads,
            num_kv_heads=num_kv_heads,
            queries=tuple(as_np(r["q"]) for r in rows),
            keys=tuple(as_np(r["k"]) for r in rows),
            scaling=tuple(r["scaling"] for r in rows),
            causal=tuple(r["causal"] for r in rows),
            masks=tuple(r["mask"] for r in rows),
            biases=tuple(r["bias"] for r in rows),
            softcap=tuple(r["softcap"] for r in rows),
        )


def _capture_attention(module, query, key, value, attention_mask, **kwargs):
    recorder: Recorder | None = getattr(_local, "recorder", None)
    if recorder is not None:
        if getattr(recorder, "keep_values", False):  # other recorders (generation's) take no value
            recorder.record(module, query, key, attention_mask, kwargs, value)
        else:
            recorder.record(module, query, key, attention_mask, kwargs)
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


AttentionInterface.register(CAPTURE_IMPL, _capture_attention)


@contextlib.contextmanager
def recording(recorder: Recorder) -> Iterator[Recorder]:
    """Record attention inputs of forwards run on this thread within the block."""
    previous = getattr(_local, "recorder", None)
    _local.recorder = recorder
    try:
        yield recorder
    finally:
        _local.recorder = previous
