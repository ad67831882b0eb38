"""Attention jobs the worker thread runs for the attention views: `fn(session, ctx, **kwargs)`.

Maps are computed from the trace's captured q/k on request and block-reduced to the
resolution the view asks for, so only small matrices cross to the GUI thread.  Results
are cached per trace in `session.extras['attention']` (going back to a head is free).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from . import attention as A
from .attention_results import AttentionMap, AttentionRow, LayerOverview
from .errors import LlmvizError
from .session import Session
from .tasks import TaskContext
from .threads import torch_threads
from .trace_data import AttentionCapture, TraceData

CACHE_BYTES = 96 * 2**20
MAX_REGION_CELLS = 2048


@dataclass
class _Cache:
    """Worker-side results for one trace."""

    trace_id: int
    maps: OrderedDict = field(default_factory=OrderedDict)
    rollout: np.ndarray | None = None
    rollout_rows: dict[int, np.ndarray] = field(default_factory=dict)
    overviews: dict[tuple, LayerOverview] = field(default_factory=dict)

    def remember(self, key: tuple, value: AttentionMap) -> None:
        self.maps[key] = value
        while sum(v.matrix.nbytes for v in self.maps.values()) > CACHE_BYTES and len(self.maps) > 1:
            self.maps.popitem(last=False)


def _capture(session: Session, trace_id: int) -> tuple[TraceData, AttentionCapture, _Cache]:
    trace = session.require_trace(trace_id)
    cap = trace.capture
    if cap is None:
        raise LlmvizError(trace.attention_note or "This model's attention was not captured.")
    cache = session.extras.get("attention")
    if not isinstance(cache, _Cache) or cache.trace_id != trace.id:
        cache = _Cache(trace.id)
        session.extras["attention"] = cache
    return trace, cap, cache


def clamp_selection(cap: AttentionCapture, layer: int, head: int) -> tuple[int, int]:
    """The nearest valid (layer, head): a stale selection from another model still shows something."""
    return min(max(0, layer), cap.num_layers - 1), min(max(0, head), cap.num_heads - 1)


def _keep(trace: TraceData, hide_first: bool, hide_special: bool) -> np.ndarray:
    keep = A.kept_positions(trace.num_tokens, trace.tokens.special, hide_first, hide_special)
    if keep.size == 0:
        raise LlmvizError("Hiding the first and special tokens leaves no tokens to show; untick one of them.")
    return keep


def _selection(session: Session, trace_id: int, layer: int, head: int, hide_first: bool,
               hide_special: bool) -> tuple[TraceData, AttentionCapture, _Cache, int, int, np.ndarray]:
    """The trace, its capture and cache, the (clamped) layer and head, and the shown positions."""
    trace, cap, cache = _capture(session, trace_id)
    layer, head = clamp_selection(cap, layer, head)
    return trace, cap, cache, layer, head, _keep(trace, hide_first, hide_special)


def _full_rollout(cap: AttentionCapture, cache: _Cache, ctx: TaskContext) -> np.ndarray:
    if cap.num_tokens > A.ROLLOUT_MAP_MAX_TOKENS:
        raise LlmvizError(
            f"The rollout map multiplies {cap.num_layers} T x T matrices; llmviz draws it for texts up to "
            f"{A.ROLLOUT_MAP_MAX_TOKENS:,} tokens (this one has {cap.num_tokens:,}). "
            "The per-token rollout of a chosen query works at any length.")
    if cache.rollout is None:
        cache.rollout = A.rollout(cap, ctx)
    return cache.rollout


def attention_map(session: Session, ctx: TaskContext, trace_id: int, source: str = "head", layer: int = 0,
                  head: int = 0, reduce: str = "max", max_cells: int = 1024, hide_first: bool = False,
                  hide_special: bool = False, renormalise: bool = False,
                  region: tuple[int, int, int, int] | None = None) -> AttentionMap:
    """A head's map, the mean/max over a layer's heads, or the rollout map, at screen resolution.

    `region` (row0, row1, col0, col1, indices into the shown tokens) asks for a zoomed part;
    it comes back exact when it fits in `max_cells`.
    """
    trace, cap, cache, layer, head, keep = _selection(session, trace_id, layer, head, hide_first, hide_special)
    n = keep.size
    if region is None:
        region = (0, n, 0, n)
    r0, r1, c0, c1 = (int(v) for v in region)
    r0, c0 = min(max(0, r0), n - 1), min(max(0, c0), n - 1)
    r1, c1 = min(max(r0 + 1, r1), n), min(max(c0 + 1, c1), n)
    block = A.block_for(max(r1 - r0, c1 - c0), min(max(1, max_cells), MAX_REGION_CELLS))
    reduce = "exact" if block == 1 else reduce
    key = (source, layer, head, reduce, block, hide_first, hide_special, renormalise, (r0, r1, c0, c1))
    if key in cache.maps:
        cache.maps.move_to_end(key)
        return cache.maps[key]
    started = time.perf_counter()
    kwargs: dict[str, Any] = dict(keep=keep, renormalise=renormalise, block=block,
                                  reduce="max" if reduce == "exact" else reduce, region=(r0, r1, c0, c1), ctx=ctx)
    if source == "rollout":
        matrix = A.matrix_blocks(_full_rollout(cap, cache, ctx), **kwargs)
    else:
        with torch_threads(1) if source == "head" else nullcontext():  # one head is latency-bound (threads.py)
            matrix = A.attention_blocks(cap, layer, head, source, **kwargs)
    result = AttentionMap(trace.id, source, layer, head, matrix, keep, (r0, r1, c0, c1), block, reduce,
                          renormalise and keep.size < trace.num_tokens, time.perf_counter() - started)
    cache.remember(key, result)
    return result


def prefetch_maps(session: Session, ctx: TaskContext, trace_id: int, heads: list[tuple[int, int]],
                  **options: Any) -> int:
    """Compute and cache the maps of `heads` [(layer, head), ...] with the same options as
    attention_map, so that moving to them (the arrow keys) only draws.  Runs as background
    work: it reports no progress and stops at the next slab when anything else is asked.
    Returns how many maps it computed (the rest were cached already)."""
    quiet = TaskContext(ctx.token)
    computed = 0
    for layer, head in heads:
        quiet.check()
        known = set(_capture(session, trace_id)[2].maps)
        attention_map(session, quiet, trace_id, "head", layer, head, **options)
        computed += any(key not in known for key in _capture(session, trace_id)[2].maps)
    return computed


def attention_row(session: Session, ctx: TaskContext, trace_id: int, query: int, source: str = "head",
                  layer: int = 0, head: int = 0, hide_first: bool = False, hide_special: bool = False,
                  renormalise: bool = False) -> AttentionRow:
    """One query token's exact attention (or rollout) over the shown key tokens."""
    trace, cap, cache, layer, head, keep = _selection(session, trace_id, layer, head, hide_first, hide_special)
    if not 0 <= query < trace.num_tokens:
        raise LlmvizError(f"Token {query} is not in this text ({trace.num_tokens} tokens).")
    if source == "rollout":
        if cache.rollout is not None:
            row = cache.rollout[query]
        else:
            if query not in cache.rollout_rows:
                cache.rollout_rows[query] = A.rollout_row(cap, query, ctx)
            row = cache.rollout_rows[query]
    else:
        with torch_threads(1):
            row = A.exact_row(cap, layer, head, query, source)
    values = row[keep].astype(np.float32)
    if renormalise and keep.size < trace.num_tokens:
        total = float(values.sum())
        values = values / total if total > 0 else np.zeros_like(values)
    return AttentionRow(trace.id, source, layer, head, query, keep, values)


def overview_layer(session: Session, ctx: TaskContext, trace_id: int, layer: int, size: int = 48,
                   reduce: str = "max") -> LayerOverview:
    """Thumbnails and statistics of every head in one layer (the grid asks layer by layer)."""
    trace, cap, cache = _capture(session, trace_id)
    if not 0 <= layer < cap.num_layers:
        raise LlmvizError(f"Layer {layer} is not in this model ({cap.num_layers} layers).")
    key = (layer, size, reduce)
    if key not in cache.overviews:
        ctx.progress("Overview of all heads", layer / cap.num_layers, f"layer {layer + 1}/{cap.num_layers}")
        with torch.inference_mode():
            out = A.layer_overview(cap, layer, size, reduce, ctx)
        cache.overviews[key] = LayerOverview(trace.id, layer, size, reduce, int(out["block"]), out["thumbs"],
                                             out["entropy"], out["distance"], out["first"])
    return cache.overviews[key]
