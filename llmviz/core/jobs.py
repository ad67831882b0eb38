"""Functions the app's worker thread runs on request: `fn(session, ctx, **kwargs)`.

Views name these by dotted path (e.g. 'llmviz.core.attention_jobs.attention_map') so that the GUI
thread never imports torch; the worker imports and calls them.  Each returns a frozen
dataclass of numpy arrays or plain values.
"""

from __future__ import annotations

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


def environment(session: Session, ctx: TaskContext) -> dict[str, str]:
    from .environment import environment_report

    return environment_report()
