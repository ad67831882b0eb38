"""Prediction jobs the engine runs for the prediction view: `fn(session, ctx, **kwargs)`."""

from __future__ import annotations

from . import prediction
from .prediction_results import LogitLens, PositionLogits
from .session import Session
from .tasks import TaskContext


def next_token(session: Session, ctx: TaskContext, trace_id: int, position: int = -1) -> PositionLogits:
    """Job: the full logits after `position` (default the last), with labels for the top candidates."""
    return prediction.position_logits(session, session.require_trace(trace_id), position)


def logit_lens(session: Session, ctx: TaskContext, trace_id: int, start: int = 0, count: int = 24, k: int = 5) -> LogitLens:
    """Job: top-k next-token guesses of every layer's hidden state at positions [start, start + count)."""
    return prediction.lens_table(session, ctx, session.require_trace(trace_id), start, count, k)
