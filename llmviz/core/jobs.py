"""Functions the app's worker thread runs on request: `fn(session, ctx, **kwargs)`.

Views name these by dotted path (e.g. 'llmviz.core.jobs.head_map') so that the GUI
thread never imports torch; the worker imports and calls them.  Each returns a frozen
dataclass of numpy arrays or plain values.
"""

from __future__ import annotations

import numpy as np

from .results import HeadMap
from .session import Session
from .specs import ModelInfo, ModelSpec
from .tasks import TaskContext


def warm_up(session: Session, ctx: TaskContext) -> None:
    """Nothing to do: creating the session imported torch and transformers on the worker.

    The app submits this as soon as its window shows, so that one-time import (seconds,
    and the GIL held in C initialisers) happens up front, labelled, not inside a load.
    """
    ctx.progress("Starting the model engine (importing torch)", None)


def load(session: Session, ctx: TaskContext, spec: ModelSpec) -> ModelInfo:
    return session.load(spec, ctx)


def run_text(session: Session, ctx: TaskContext, text: str, max_tokens: int | None = None):  # -> Trace
    return session.run(text, ctx, max_tokens)


def head_map(session: Session, ctx: TaskContext, trace_id: int, layer: int, head: int) -> HeadMap:
    """One head's exact map for the current trace."""
    from .attention import head_map as compute

    trace = session.require_trace(trace_id)
    cap = trace.attention
    if cap is None:
        from .errors import LlmvizError

        raise LlmvizError(trace.attention_note or "This model's attention was not captured.")
    layer = min(max(0, layer), cap.num_layers - 1)
    head = min(max(0, head), cap.num_heads - 1)
    matrix = compute(cap, layer, head)
    idx = np.arange(cap.num_tokens)
    return HeadMap(trace.id, layer, head, matrix, idx, idx.copy(), label=f"layer {layer}, head {head}")


def environment(session: Session, ctx: TaskContext) -> dict[str, str]:
    from .environment import environment_report

    return environment_report()
