"""Similarity and projection jobs: `fn(session, ctx, **kwargs)` entry points.

The trace's hidden states stay in the engine: a view asks for the map of one layer (a
millisecond of numpy at T = 512, block means above MAX_CELLS tokens), so only the matrix
it draws crosses to the window. A second text's run is kept for the cross maps.
"""

from __future__ import annotations

from dataclasses import dataclass

from .embeddings import MAX_CELLS, cosine_map, dominant_token, project, sentence_similarity
from .embeddings_results import Projection, SimilarityMap, TextComparison
from .errors import InputError, LlmvizError
from .session import Session
from .tasks import TaskContext
from .trace import run_trace
from .trace_data import TraceData


@dataclass(frozen=True)
class _Second:
    """The second text of a comparison, kept engine-side for its trace."""

    trace_id: int
    run: TraceData


def _layer(trace: TraceData, layer: int) -> int:
    return min(max(0, int(layer)), trace.hidden_states.shape[0] - 1)


def similarity_map(session: Session, ctx: TaskContext, trace_id: int, layer: int, centered: bool = False,
                   max_cells: int = MAX_CELLS) -> SimilarityMap:
    """Token x token cosine similarity of the trace's vectors at `layer`."""
    trace = session.require_trace(trace_id)
    layer = _layer(trace, layer)
    hidden = trace.hidden_states[layer]
    sim = cosine_map(hidden, center=centered, max_cells=max_cells)
    return SimilarityMap(sim.matrix, sim.row_index, sim.col_index, sim.block, centered, trace.id, layer,
                         (dominant_token(hidden), None))


def compare_texts(session: Session, ctx: TaskContext, trace_id: int, other_text: str) -> TextComparison:
    """Run `other_text` (without replacing the session's trace) and compare its sentence vector
    with the trace's at every layer."""
    trace = session.require_trace(trace_id)
    if not isinstance(other_text, str) or not other_text.strip():
        raise InputError("Type a second text to compare with.")
    other = run_trace(session.require_model(), other_text, ctx)
    if other.is_empty:
        raise InputError("The second text has no tokens for this model.")
    session.extras["similarity"] = _Second(trace.id, other)
    return TextComparison(trace.id, other_text, other.tokens,
                          sentence_similarity(trace.hidden_states, other.hidden_states), other.truncated_from)


def cross_map(session: Session, ctx: TaskContext, trace_id: int, layer: int, centered: bool = False,
              max_cells: int = MAX_CELLS) -> SimilarityMap:
    """Token x token cosine similarity between the trace and the compared second text at `layer`."""
    trace = session.require_trace(trace_id)
    second = session.extras.get("similarity")
    if not isinstance(second, _Second) or second.trace_id != trace.id:
        raise LlmvizError("Compare a second text first.")
    layer = _layer(trace, layer)
    a, b = trace.hidden_states[layer], second.run.hidden_states[min(layer, second.run.hidden_states.shape[0] - 1)]
    sim = cosine_map(a, b, center=centered, max_cells=max_cells)
    return SimilarityMap(sim.matrix, sim.row_index, sim.col_index, sim.block, centered, trace.id, layer,
                         (dominant_token(a), dominant_token(b)))


def projection(session: Session, ctx: TaskContext, trace_id: int, unit_length: bool = True) -> Projection:
    """PCA of the trace's token vectors at every layer, and one PCA shared by all layers."""
    trace = session.require_trace(trace_id)
    return project(trace.hidden_states, trace.id, unit_length, ctx)
