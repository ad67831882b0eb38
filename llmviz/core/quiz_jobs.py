"""The quiz's engine jobs: `fn(session, ctx, **kwargs)`, named in core/targets.py."""

from __future__ import annotations

from .quiz import generate
from .quiz import head_statistics as _head_statistics
from .quiz_results import HeadStatistics, Quiz
from .session import Session
from .tasks import TaskContext


def head_statistics(session: Session, ctx: TaskContext, trace_id: int) -> HeadStatistics:
    """Previous-token and first-token attention shares of every head (cached per trace)."""
    trace = session.require_trace(trace_id)
    cached = session.extras.get("head_statistics")
    if isinstance(cached, HeadStatistics) and cached.trace_id == trace.id:
        return cached
    stats = _head_statistics(trace, ctx)
    session.extras["head_statistics"] = stats
    return stats


def questions(session: Session, ctx: TaskContext, trace_id: int, seed: int = 0) -> Quiz:
    """Questions about the loaded model whose right answers are computed now."""
    return generate(session, ctx, session.require_trace(trace_id), seed)
