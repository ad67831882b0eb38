"""The engine's model and text jobs: `fn(session, ctx, **kwargs)`."""

from __future__ import annotations

from .results import Trace
from .session import Session
from .specs import ModelInfo, ModelSpec
from .tasks import TaskContext


def load(session: Session, ctx: TaskContext, spec: ModelSpec) -> ModelInfo:
    return session.load(spec, ctx)


def run_text(session: Session, ctx: TaskContext, text: str, max_tokens: int | None = None) -> Trace:
    """Run the text; the window gets the light Trace, the engine keeps its arrays."""
    return session.run(text, ctx, max_tokens).trace


def environment(session: Session, ctx: TaskContext) -> dict[str, str]:
    from .environment import environment_report

    return environment_report()
