"""Attention maps from a trace's capture, computed on demand (on the worker thread).

Every map is recomputed exactly as transformers' eager attention does:
softmax(q k^T * scaling + mask) in float32, with grouped-query heads sharing keys.
Work is done in slabs of query rows so a long context never holds more than about
CHUNK_ELEMENTS scores at once (SmolLM2 at T = 8192 would need 72 GB for every map, and
one head's full map is 268 MB); for causal models a slab of rows only computes the keys
it can see.  Maps meant for the screen are block-reduced (max or mean over b x b tokens)
slab by slab, so only the small matrix is ever whole.

Also here: per-head summary statistics (entropy, mean attention distance, share on the
first token) and attention rollout (Abnar & Zuidema 2020).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .attention_results import ROLLOUT_MAP_MAX_TOKENS
from .tasks import TaskContext
from .trace_data import AttentionCapture

ROW_BLOCK = 1024
CHUNK_ELEMENTS = 1 << 19  # scores per slab (2 MB of float32, reused: see scratch(); a cancel waits for one slab)
REDUCTIONS = ("max", "mean")
SOURCES = ("head", "mean", "max")
LN2 = math.log(2.0)


def _check(cap: AttentionCapture, layer: int, head: int) -> None:
    if not 0 <= layer < cap.num_layers:
        raise IndexError(f"layer {layer} out of range (model has {cap.num_layers})")
    if not 0 <= head < cap.num_heads:
        raise IndexError(f"head {head} out of range (model has {cap.num_heads})")


_scratch = threading.local()


def scratch(numel: int) -> torch.Tensor:
    """A reusable float32 buffer of at least `numel` elements, one per thread.

    A fresh slab of scores costs page faults that can rival the arithmetic (filling a new
    64 MiB tensor costs several times more than reusing one), so the slab loops write their
    scores into this buffer instead.  Whatever comes out of it is
    valid only until the next call on the same thread.
    """
    buf = getattr(_scratch, "buf", None)
    if buf is None or buf.numel() < numel:
        # Never an inference tensor, whichever job (re)allocates it: a tensor created under
        # torch.inference_mode() cannot be updated in place outside it, and the next job on
        # this thread may run outside it.  A normal tensor works in both.
        with torch.inference_mode(False):
            buf = torch.empty(max(numel, 1))
        _scratch.buf = buf
    return buf[:numel]


def _rows_index(rows: np.ndarray) -> slice | np.ndarray:
    """A slice for a contiguous run of positions (views, not copies), else the index array."""
    if rows.size and int(rows[-1]) - int(rows[0]) + 1 == rows.size:
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


class HeadProbs:
    """Probability rows of some heads of one layer, computed slab by slab.

    Keys are gathered once per layer (grouped-query heads share them), so looping over
    row slabs costs only the q k^T product and the softmax of each slab.
    """

    def __init__(self, cap: AttentionCapture, layer: int, heads: Sequence[int]) -> None:
        for h in heads:
            _check(cap, layer, h)
        self.cap, self.layer, self.heads = cap, layer, list(heads)
        self.num_tokens = cap.num_tokens
        self.mask = cap.masks[layer] if cap.method == "qk" and cap.masks else None
        self.bias = cap.biases[layer] if cap.method == "qk" and cap.biases else None
        self.causal = cap.method == "qk" and cap.causal[layer] and self.mask is None and self.bias is None
        if cap.method == "qk":
            self.q = cap.queries[layer]
            kv = [cap.kv_head(h) for h in self.heads]
            keys = torch.from_numpy(cap.keys[layer])
            self.k = keys[kv[0]:kv[0] + 1] if len(set(kv)) == 1 else keys[kv]  # [H or 1, T, d]
            self.scaling = cap.scaling[layer]
            self.softcap = cap.softcap[layer] if cap.softcap else None

    def key_stop(self, rows: np.ndarray, align: int = 1) -> int:
        """Keys the rows can attend to: for causal layers only up to the last row (rounded up
        to a multiple of `align`, so block reduction finds whole blocks; those keys are masked)."""
        if not (self.causal and rows.size):
            return self.num_tokens
        return min(self.num_tokens, -(-(int(rows[-1]) + 1) // align) * align)

    def rows(self, rows: np.ndarray, trim: bool = False, align: int = 1, reuse: bool = False) -> torch.Tensor:
        """float32 [heads, len(rows), K] for ascending query positions `rows`.

        K is T, or with `trim` the key_stop (keys beyond it are masked, i.e. exactly 0).
        A row masked everywhere attends nowhere (zeros); NaN from the model stays NaN.
        With `reuse` the result lives in this thread's scratch buffer: use it before the
        next call (the slab loops do).
        """
        rows = np.asarray(rows, dtype=np.int64)
        sel = _rows_index(rows)
        stop = self.key_stop(rows, align) if trim else self.num_tokens
        if self.cap.method == "weights":
            w = self.cap.weights[self.layer]
            return torch.from_numpy(np.ascontiguousarray(np.stack([w[h][sel, :stop] for h in self.heads]), np.float32))
        q = torch.from_numpy(np.stack([self.q[h][sel] for h in self.heads]) if len(self.heads) > 1
                             else self.q[self.heads[0]][sel][None]).float()
        keys = self.k[:, :stop].float().transpose(-1, -2)
        shape = (len(self.heads), rows.size, stop)
        # eager attention: matmul(q, k^T) * scaling, here in one pass (baddbmm's alpha)
        scores = scratch(math.prod(shape)).view(shape) if reuse else torch.empty(shape)
        torch.baddbmm(scores, q, keys.expand(shape[0], -1, -1), beta=0.0, alpha=self.scaling, out=scores)
        if self.softcap:
            scores.div_(self.softcap).tanh_().mul_(self.softcap)
        dead = None
        if self.bias is not None:
            b = torch.from_numpy(self.bias[:, sel, :stop] if self.bias.shape[0] == 1 else self.bias[self.heads][:, sel, :stop])
            scores.add_(b)
            dead = torch.isneginf(scores).all(-1)
        elif self.mask is not None:
            allowed = torch.from_numpy(np.ascontiguousarray(self.mask[sel, :stop]))
            scores.masked_fill_(~allowed, float("-inf"))
            dead = ~allowed.any(-1)
        elif self.causal:
            first = int(rows[0]) + 1
            if first < stop:  # only the columns right of the first row's diagonal can be masked
                later = torch.arange(first, stop).unsqueeze(0) > torch.from_numpy(rows).unsqueeze(1)
                scores[..., first:].masked_fill_(later, float("-inf"))
        probs = torch.softmax(scores, dim=-1, out=scores)
        if dead is not None and bool(dead.any()):
            probs[dead.expand(probs.shape[:-1])] = 0.0
        return probs


def head_scores_rows(cap: AttentionCapture, layer: int, head: int, start: int, stop: int) -> torch.Tensor:
    """Attention probabilities of query rows [start, stop) for one head: float32 [rows, T]."""
    return HeadProbs(cap, layer, [head]).rows(np.arange(start, stop))[0]


def head_map(cap: AttentionCapture, layer: int, head: int) -> np.ndarray:
    """The exact T x T map of one head, float32."""
    t = cap.num_tokens
    out = np.empty((t, t), dtype=np.float32)
    probs = HeadProbs(cap, layer, [head])
    for start in range(0, t, ROW_BLOCK):
        stop = min(t, start + ROW_BLOCK)
        out[start:stop] = probs.rows(np.arange(start, stop))[0].numpy()
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


# ------------------------------------------------------------------ screen-resolution maps


def block_for(units: int, max_cells: int) -> int:
    """Tokens per displayed cell so that `units` tokens fit in `max_cells` cells."""
    return max(1, math.ceil(units / max(1, max_cells)))


def block_reduce(x: torch.Tensor, block: int, how: str, width: int | None = None) -> torch.Tensor:
    """Reduce the last two dims of x [..., R, K] to blocks of `block` x `block` by max or mean.

    `width` >= K treats the columns K..width as zeros (causal rows never computed them).
    A partial last block is reduced over the tokens it has (NaN propagates, shown as NaN).
    Whole blocks are reduced through reshaped views, partial ones by pooling with ceil_mode;
    padding every slab to whole blocks and to `width` first copied it twice and was a third
    of a T = 4096 head switch.
    """
    width = x.shape[-1] if width is None else width
    r, k = x.shape[-2], x.shape[-1]
    if block == 1:
        return torch.nn.functional.pad(x, (0, width - k), value=0.0) if width > k else x
    rb, cb = math.ceil(r / block), math.ceil(width / block)
    lead = x.shape[:-2]
    if k == 0 or r == 0:
        return torch.zeros(*lead, rb, cb, dtype=x.dtype)
    if r % block == 0 and k % block == 0 and x.is_contiguous():  # whole blocks: reduce views (fastest)
        # rows first: an elementwise reduction of whole rows vectorises; reducing runs of
        # `block` columns first is several times slower
        slab = x.reshape(*lead, rb, block, k)
        if how == "max":
            pooled = slab.amax(-2).reshape(*lead, rb, k // block, block).amax(-1)
        else:
            pooled = slab.sum(-2).reshape(*lead, rb, k // block, block).sum(-1)
    else:
        planes = x.reshape(-1, 1, r, k)
        if how == "max":
            pooled = torch.nn.functional.max_pool2d(planes, block, block, ceil_mode=True)
        else:  # block sums over the tokens present; divided below
            pooled = torch.nn.functional.avg_pool2d(planes, block, block, ceil_mode=True, divisor_override=1)
        pooled = pooled.reshape(*lead, rb, pooled.shape[-1])
    if width > k:
        if how == "max" and k % block:  # that block also holds zeros beyond K
            pooled[..., -1] = pooled[..., -1].clamp_min(0.0)
        pooled = torch.nn.functional.pad(pooled, (0, cb - pooled.shape[-1]), value=0.0)
    if how == "max":
        return pooled
    row_n = torch.clamp(r - torch.arange(rb) * block, max=block).to(x.dtype)
    col_n = torch.clamp(width - torch.arange(cb) * block, max=block).to(x.dtype)
    return pooled / (row_n[:, None] * col_n[None, :])


def kept_positions(num_tokens: int, special: np.ndarray | None = None, hide_first: bool = False,
                   hide_special: bool = False) -> np.ndarray:
    """Token positions still shown after hiding the first token and/or special tokens (sinks)."""
    keep = np.ones(num_tokens, dtype=bool)
    if hide_first and num_tokens:
        keep[0] = False
    if hide_special and special is not None:
        keep &= ~np.asarray(special, dtype=bool)[:num_tokens]
    return np.flatnonzero(keep)


def _combine(source: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if source == "mean":
        return lambda p: p.mean(0)
    if source == "max":
        return lambda p: p.amax(0)
    return lambda p: p[0]


def _take_cols(a: torch.Tensor, cols: np.ndarray) -> torch.Tensor:
    """Columns `cols` (ascending) of a [R, K] that lie below K; the rest are zeros, which
    block_reduce adds (its `width`) after reducing instead of copying the slab to pad it."""
    inside = int(np.searchsorted(cols, a.shape[-1]))
    return a[:, _rows_index(cols[:inside])] if inside else a[:, :0]


def _renormalise(a: torch.Tensor, keep: np.ndarray) -> torch.Tensor:
    """Rows rescaled to sum to 1 over the shown keys (rows with nothing left stay 0)."""
    inside = keep[: int(np.searchsorted(keep, a.shape[-1]))]
    total = a[:, _rows_index(inside)].sum(-1, keepdim=True) if inside.size else torch.zeros(a.shape[0], 1)
    return torch.where(total > 0, a / torch.where(total > 0, total, 1.0), torch.zeros((), dtype=a.dtype))


def slab_rows(block: int, heads: int, keys: int) -> int:
    """Query rows per slab: a multiple of `block` keeping heads x rows x keys near CHUNK_ELEMENTS."""
    rows = max(1, CHUNK_ELEMENTS // max(1, heads * keys))
    return max(block, rows // block * block)


def attention_blocks(cap: AttentionCapture, layer: int, head: int, source: str = "head", block: int = 1,
                     **options: Any) -> np.ndarray:
    """One head's map (source 'head') or the mean/max over a layer's heads, block-reduced;
    `options` are _blocks's (keep, renormalise, reduce, region, ctx)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    heads = [head] if source == "head" else list(range(cap.num_heads))
    probs = HeadProbs(cap, layer, heads)
    combine = _combine(source)
    return _blocks(lambda rows: combine(probs.rows(rows, trim=True, align=block, reuse=True)), cap.num_tokens, len(heads),
                   block=block, **options)


def matrix_blocks(full: np.ndarray, **options: Any) -> np.ndarray:
    """The same hiding, renormalising, cutting and block reduction for a precomputed T x T map."""
    matrix = torch.from_numpy(np.ascontiguousarray(full, dtype=np.float32))
    return _blocks(lambda rows: matrix[_rows_index(rows)], matrix.shape[0], 1, **options)


def _blocks(
    rows_of: Callable[[np.ndarray], torch.Tensor],
    t: int,
    heads: int,
    *,
    keep: np.ndarray | None = None,
    renormalise: bool = False,
    block: int = 1,
    reduce: str = "max",
    region: tuple[int, int, int, int] | None = None,
    ctx: TaskContext | None = None,
) -> np.ndarray:
    """Walk the shown query rows in slabs: rows_of(positions) -> [R, K <= T] probabilities.

    `keep`: token positions shown (rows and columns; default all).  `region`: (row0, row1,
    col0, col1) as indices into `keep`.  With `renormalise`, rows are rescaled to sum to 1
    over the kept keys before the region is cut.  Returns float32
    [ceil(rows / block), ceil(cols / block)]; block 1 gives exact values.
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduce!r}")
    keep = np.arange(t) if keep is None else np.asarray(keep, dtype=np.int64)
    r0, r1, c0, c1 = region or (0, keep.size, 0, keep.size)
    qpos, kpos = keep[r0:r1], keep[c0:c1]
    hidden = keep.size < t
    out = np.empty((math.ceil(qpos.size / block), math.ceil(kpos.size / block)), dtype=np.float32)
    step = slab_rows(block, heads, t)
    for s in range(0, qpos.size, step):
        if ctx is not None:
            ctx.progress("Computing the attention map", s / max(1, qpos.size))
        rows = qpos[s:s + step]
        a = rows_of(rows)
        if renormalise and hidden:
            a = _renormalise(a, keep)
        reduced = block_reduce(_take_cols(a, kpos), block, reduce, width=kpos.size)
        out[s // block:(s + rows.size + block - 1) // block] = reduced.numpy()
    return out


def exact_row(cap: AttentionCapture, layer: int, head: int, position: int, source: str = "head") -> np.ndarray:
    """One query's attention over all T keys (head, or mean/max over heads): float32 [T]."""
    heads = [head] if source == "head" else list(range(cap.num_heads))
    return _combine(source)(HeadProbs(cap, layer, heads).rows(np.array([position])))[0].numpy()


# ------------------------------------------------------------------ per-head overview


def layer_overview(cap: AttentionCapture, layer: int, size: int, reduce: str = "max",
                   ctx: TaskContext | None = None) -> dict[str, np.ndarray]:
    """Thumbnails and summary statistics of every head of one layer, in one pass over the rows.

    Returns 'thumbs' float32 [H, s, s] (block-reduced to at most `size` cells a side),
    and per head, averaged over query rows: 'entropy' (bits), 'distance' (tokens between
    query and key, weighted by attention) and 'first' (attention on the first token).
    """
    t, heads = cap.num_tokens, cap.num_heads
    block = block_for(t, size)
    probs = HeadProbs(cap, layer, range(heads))
    cells = math.ceil(t / block)
    thumbs = np.empty((heads, cells, cells), dtype=np.float32)
    entropy = torch.zeros(heads, dtype=torch.float64)
    distance = torch.zeros(heads, dtype=torch.float64)
    first = torch.zeros(heads, dtype=torch.float64)
    step = slab_rows(block, heads, t)
    for s in range(0, t, step):
        if ctx is not None:
            ctx.check()
        rows = np.arange(s, min(t, s + step))
        p = probs.rows(rows, trim=True, align=block, reuse=True)  # [H, R, K]
        entropy += torch.special.entr(p).sum(-1).sum(-1).double()
        gap = (torch.from_numpy(rows)[:, None] - torch.arange(p.shape[-1])[None, :]).abs().float()
        distance += (p * gap).sum(-1).sum(-1).double()
        first += p[..., 0].sum(-1).double()
        thumbs[:, s // block:(s + rows.size + block - 1) // block] = block_reduce(p, block, reduce, width=t).numpy()
    n = max(1, t)
    return {
        "thumbs": thumbs,
        "entropy": (entropy / n / LN2).float().numpy(),
        "distance": (distance / n).float().numpy(),
        "first": (first / n).float().numpy(),
        "block": np.array(block),
    }


# ------------------------------------------------------------------ attention rollout


def _rollout_rows(probs: HeadProbs, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of (mean_h A + I), and their sums (the renormaliser), for query positions `rows`."""
    a = probs.rows(rows, trim=True, reuse=True).mean(0)
    a[torch.arange(rows.size), torch.from_numpy(rows)] += 1.0
    return a, a.sum(-1, keepdim=True)


def rollout(cap: AttentionCapture, ctx: TaskContext | None = None) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020) as a T x T map, float32.

    Per layer: average the heads, add the identity (the residual stream), renormalise the
    rows, and multiply through the layers: R = Â_{L-1} ... Â_1 Â_0.  Row q says how much
    of the input token j flows into position q at the top of the model.
    """
    t = cap.num_tokens
    if t > ROLLOUT_MAP_MAX_TOKENS:
        raise ValueError(f"rollout map limited to {ROLLOUT_MAP_MAX_TOKENS} tokens (got {t})")
    result: torch.Tensor | None = None
    for layer in range(cap.num_layers):
        if ctx is not None:
            ctx.progress("Attention rollout", layer / cap.num_layers, f"layer {layer + 1}/{cap.num_layers}")
        probs = HeadProbs(cap, layer, range(cap.num_heads))
        a_hat = torch.zeros(t, t)
        step = slab_rows(1, cap.num_heads, t)
        for s in range(0, t, step):
            rows = np.arange(s, min(t, s + step))
            a, total = _rollout_rows(probs, rows)
            a_hat[s:s + rows.size, :a.shape[-1]] = a / total
        result = a_hat if result is None else a_hat @ result
    assert result is not None
    return result.numpy()


def rollout_row(cap: AttentionCapture, query: int, ctx: TaskContext | None = None) -> np.ndarray:
    """Row `query` of the rollout map without forming it: e_q^T Â_{L-1} ... Â_0, float32 [T].

    Each step needs only the rows of Â_l where the vector is non-zero (for causal models
    the positions up to the query), so any T works; the cost is one pass over those rows.
    """
    t = cap.num_tokens
    if not 0 <= query < t:
        raise IndexError(f"query token {query} out of range (text has {t} tokens)")
    v = torch.zeros(t, dtype=torch.float64)
    v[query] = 1.0
    for i, layer in enumerate(reversed(range(cap.num_layers))):
        if ctx is not None:
            ctx.progress("Attention rollout for one token", i / cap.num_layers, f"layer {layer + 1}")
        probs = HeadProbs(cap, layer, range(cap.num_heads))
        support = np.flatnonzero(v.numpy())
        new = torch.zeros(t, dtype=torch.float64)
        step = slab_rows(1, cap.num_heads, t)
        for s in range(0, support.size, step):
            rows = support[s:s + step]
            a, total = _rollout_rows(probs, rows)
            weights = (v[torch.from_numpy(rows)] / total[:, 0].double())
            new[:a.shape[-1]] += weights @ a.double()
        v = new
    return v.float().numpy()
