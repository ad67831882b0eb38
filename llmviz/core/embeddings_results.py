"""Similarity and projection results: what the similarity and projection views draw.

Frozen, numpy only (no torch): the only embeddings module a view imports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .results import TokenTable


def layer_name(layer: int, num_layers: int) -> str:
    """'embeddings' for 0, 'layer n' after block n, 'layer n (last)' for the final hidden state."""
    if layer == 0:
        return "embeddings"
    return f"layer {layer}" + (" (last)" if layer == num_layers else "")


@dataclass(frozen=True)
class SimilarityMap:
    """Cosine similarity between two sets of token vectors (or one set with itself)."""

    matrix: np.ndarray  # float32 [rows, cols]
    row_index: np.ndarray  # first token of each row
    col_index: np.ndarray
    block: int  # tokens per cell side: 1 = exact values, else the mean over block x block pairs
    centered: bool
    trace_id: int = 0
    layer: int = 0
    #: Per side (rows, columns): (position, ratio to the median length) of a token whose vector is
    #: at least ten times longer than the median one, which then decides any mean; else None.
    dominant: tuple[tuple[int, float] | None, tuple[int, float] | None] = (None, None)


@dataclass(frozen=True)
class TextComparison:
    """The current trace's text against a second text run through the same model (whose
    hidden states stay in the engine; cross maps are asked for by layer)."""

    trace_id: int
    other_text: str
    other_tokens: TokenTable
    sentence: np.ndarray  # float32 [layers + 1]: cosine of mean-pooled vectors at each layer
    truncated_from: int | None = None


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
