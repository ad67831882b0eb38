"""Token and sentence similarity from hidden states, and 2-D projections of them.

Raw hidden states are anisotropic: every vector shares a large common direction, so all
cosine similarities come out high.  Subtracting the text's mean direction first (an
option everywhere here) shows the structure that the common direction hides.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .embeddings_results import Projection, SimilarityMap, layer_name
from .errors import InputError, LlmvizError
from .tasks import TaskContext

#: Above this many tokens a map shows block means (a 1024 x 1024 image is already finer than a screen).
MAX_CELLS = 1024
#: Vectors used to fit the shared (trajectories) projection; all are projected.
SHARED_FIT_ROWS = 20_000


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


def _pca(data: torch.Tensor, fit: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(coordinates [N, 2], explained fractions [2]) of `data` by torch.pca_lowrank fitted on `fit`."""
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


def project(hidden: np.ndarray, trace_id: int, unit_length: bool, ctx: TaskContext) -> Projection:
    """PCA of token vectors [layers + 1, T, D] at every layer, and one PCA shared by all layers."""
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
    return Projection(trace_id, unit_length, _align_signs(per_layer), explained,
                      shared.numpy().reshape(layers, t, 2).astype(np.float32), shared_frac.numpy(), int(fit.shape[0]))
