"""Core sessions for tests that call core directly (no engine process)."""

from __future__ import annotations

from pathlib import Path

from llmviz.core.session import Session
from llmviz.core.specs import ModelSpec


def loaded_session(source: str | Path, text: str | None = None) -> Session:
    """A core Session with `source` loaded on the CPU (and `text` run, when given)."""
    session = Session()
    session.load(ModelSpec(str(source), device="cpu"))
    if text is not None:
        session.run(text)
    return session
