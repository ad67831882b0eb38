"""Token and sentence similarity from a trace's hidden states, and 2-D projections of them.

The similarity maps are plain numpy on vectors the trace already holds, so the similarity
view computes them on the GUI thread as the layer slider moves (about a millisecond per
map at T = 512).  Only what needs a forward pass (a second text) or torch (PCA through
`torch.pca_lowrank`) runs on the worker.

Raw hidden states are anisotropic: every vector shares a large common direction, so all
cosine similarities come out high.  Subtracting the text's mean direction first (an
option everywhere here) shows the structure that the common direction hides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import InputError, LlmvizError
from .results import TokenTable

if TYPE_CHECKING:
    from .session import Session
    from .tasks import TaskContext

#: Above this many tokens a map shows block means (a 1024 x 1024 image is already finer than a screen).
MAX_CELLS = 1024
#: Vectors used to fit the shared (trajectories) projection; all are projected.
SHARED_FIT_ROWS = 20_000


def layer_name(layer: int, num_layers: int) -> str:
    """'embeddings' for 0, 'layer n' after block n, 'layer n (last)' for the final hidden state."""
    if layer == 0:
        return "embeddings"
    return f"layer {layer}" + (" (last)" if layer == num_layers else "")


def unit_rows(vectors: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """float32 rows scaled to unit length (after subtracting `mean`); zero rows stay zero."""
    v = np.asarray(vectors, dtype=np.float32)
    if mean is not None:
        v = v - mean
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norms, 1e-12)


def block_means(rows: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each run of `block` rows, and the first row index of each run."""
    n = rows.shape[0]
    starts = np.arange(0, n, block)
    sums = np.add.reduceat(rows, starts, axis=0)
    counts = np.diff(np.append(starts, n)).astype(np.float32)[:, None]
    return sums / counts, starts


@dataclass(frozen=True)
class SimilarityMap:
    """Cosine similarity between two sets of token vectors (or one set with itself)."""

    matrix: np.ndarray  # float32 [rows, cols]
    row_index: np.ndarray  # first token of each row
    col_index: np.ndarray
    block: int  # tokens per cell side: 1 = exact values, else the mean over block x block pairs
    centered: bool


def cosine_map(a: np.ndarray, b: np.ndarray | None = None, center: bool = False, max_cells: int = MAX_CELLS) -> SimilarityMap:
    """Cosine similarity of rows of `a` with rows of `b` (default: `a` itself).

    `center` subtracts the mean direction first: the mean of all the vectors involved after
    scaling each to unit length, so one very long vector (decoders often give the first
    token a huge one) cannot become the mean by itself.  When there are more than
    `max_cells` rows, each cell is the mean similarity over a block of token pairs, which is
    exactly the dot product of the blocks' mean unit vectors, so no T x T matrix is built.
    """
    a = np.asarray(a, dtype=np.float32)
    same = b is None
    b = a if same else np.asarray(b, dtype=np.float32)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise InputError("Similarity needs two sets of vectors of the same width.")
    ua = unit_rows(a)
    ub = ua if same else unit_rows(b)
    if center:
        mean = ua.mean(axis=0) if same else np.concatenate([ua, ub]).mean(axis=0)
        ua = unit_rows(ua, mean)
        ub = ua if same else unit_rows(ub, mean)
    block = max(1, math.ceil(max(a.shape[0], b.shape[0]) / max_cells))
    if block > 1:
        ua, rows = block_means(ua, block)
        ub, cols = (ua, rows) if same else block_means(ub, block)
    else:
        rows, cols = np.arange(a.shape[0]), np.arange(b.shape[0])
    matrix = np.clip(ua @ ub.T, -1.0, 1.0).astype(np.float32, copy=False)
    return SimilarityMap(np.ascontiguousarray(matrix), rows, cols, block, center)


def dominant_token(hidden: np.ndarray, factor: float = 10.0) -> tuple[int, float] | None:
    """(position, ratio to the median) of a vector at least `factor` times longer than the median one.

    Decoders often give one token (usually the first) a huge vector; it then decides any mean.
    """
    norms = np.linalg.norm(np.asarray(hidden, np.float32), axis=-1)
    median = float(np.median(norms))
    i = int(np.argmax(norms))
    ratio = float(norms[i]) / median if median > 0 else 0.0
    return (i, ratio) if ratio >= factor else None


def sentence_similarity(hidden_a: np.ndarray, hidden_b: np.ndarray) -> np.ndarray:
    """Cosine of the mean-pooled vectors, per layer: float32 [layers + 1]."""
    pa = unit_rows(np.asarray(hidden_a, np.float32).mean(axis=1))
    pb = unit_rows(np.asarray(hidden_b, np.float32).mean(axis=1))
    return np.clip((pa * pb).sum(axis=-1), -1.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------- two texts (worker)


@dataclass(frozen=True)
class TextComparison:
    """The current trace's text against a second text run through the same model."""

    trace_id: int
    other_text: str
    other_tokens: TokenTable
    other_hidden: np.ndarray  # float32 [layers + 1, T2, D]
    sentence: np.ndarray  # float32 [layers + 1]: cosine of mean-pooled vectors at each layer
    truncated_from: int | None = None


def compare_texts(session: "Session", ctx: "TaskContext", trace_id: int, other_text: str) -> TextComparison:
    """Job: run `other_text` (without replacing the session's trace) and compare it with the trace."""
    from .trace import run_trace

    trace = session.require_trace(trace_id)
    if not isinstance(other_text, str) or not other_text.strip():
        raise InputError("Type a second text to compare with.")
    other = run_trace(session.require_model(), other_text, ctx)
    if other.is_empty:
        raise InputError("The second text has no tokens for this model.")
    return TextComparison(trace.id, other_text, other.tokens, other.hidden_states,
                          sentence_similarity(trace.hidden_states, other.hidden_states), other.truncated_from)


# ---------------------------------------------------------------- projections (worker)


@dataclass(frozen=True)
class Projection:
    """Token vectors in 2-D: one PCA per layer, and one shared by all layers (for trajectories)."""

    trace_id: int
    unit_length: bool
    per_layer: np.ndarray  # float32 [layers + 1, T, 2]
    per_layer_explained: np.ndarray  # float32 [layers + 1, 2]: fraction of variance per component
    shared: np.ndarray  # float32 [layers + 1, T, 2]
    shared_explained: np.ndarray  # float32 [2]
    shared_fit_rows: int  # how many vectors the shared PCA was fitted on


def _pca(data, fit=None):  # type: ignore[no-untyped-def]
    """(coordinates [N, 2], explained fractions [2]) of `data` by torch.pca_lowrank fitted on `fit`."""
    import torch

    fit = data if fit is None else fit
    q = min(12, fit.shape[0], fit.shape[1])  # oversampled: the first two axes come out accurate
    mean = fit.mean(dim=0, keepdim=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # pca_lowrank is randomized; the same text must give the same picture
        _u, s, v = torch.pca_lowrank(fit, q=q, center=True, niter=8)
    coords = torch.zeros(data.shape[0], 2)
    k = min(2, v.shape[1])
    coords[:, :k] = (data - mean) @ v[:, :k]
    total = float(((fit - mean) ** 2).sum())
    explained = torch.zeros(2)
    if total > 0:
        explained[:k] = s[:k] ** 2 / total
    return coords, explained


def _align_signs(coords: np.ndarray) -> np.ndarray:
    """Flip each layer's axes to agree with the previous layer's, so the slider does not mirror the picture."""
    out = coords.copy()
    for layer in range(1, out.shape[0]):
        for axis in range(2):
            if float(np.dot(out[layer, :, axis], out[layer - 1, :, axis])) < 0:
                out[layer, :, axis] *= -1
    return out


def projection(session: "Session", ctx: "TaskContext", trace_id: int, unit_length: bool = True) -> Projection:
    """Job: PCA of the trace's token vectors at every layer, and one PCA shared by all layers."""
    import torch

    trace = session.require_trace(trace_id)
    hidden = trace.hidden_states
    layers, t, _d = hidden.shape
    if t < 2:
        raise LlmvizError("A projection needs at least two tokens.")
    data = torch.from_numpy(unit_rows(hidden) if unit_length else np.ascontiguousarray(hidden, np.float32))
    per_layer = np.zeros((layers, t, 2), np.float32)
    explained = np.zeros((layers, 2), np.float32)
    for layer in range(layers):
        ctx.progress("Projecting token vectors (PCA)", layer / (layers + 1), layer_name(layer, layers - 1))
        coords, frac = _pca(data[layer])
        per_layer[layer], explained[layer] = coords.numpy(), frac.numpy()
    flat = data.reshape(layers * t, -1)
    fit = flat
    if flat.shape[0] > SHARED_FIT_ROWS:
        pick = np.linspace(0, flat.shape[0] - 1, SHARED_FIT_ROWS).astype(np.int64)
        fit = flat[torch.from_numpy(pick)]
    ctx.progress("Projecting token vectors (PCA)", layers / (layers + 1), "shared by all layers")
    shared, shared_frac = _pca(flat, fit)
    return Projection(trace.id, unit_length, _align_signs(per_layer), explained,
                      shared.numpy().reshape(layers, t, 2).astype(np.float32), shared_frac.numpy(), int(fit.shape[0]))
