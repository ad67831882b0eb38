"""Generation jobs the engine runs for the generation view: `fn(session, ctx, **kwargs)`.

`start` and `step` are one token each, so the view shows every token as it arrives;
`generate` runs the same steps in a loop, for scripts, tests and benchmarks.
"""

from __future__ import annotations

from typing import Any

from . import generation
from .generation_results import GenerationSettings, GenerationStep, StepAttention
from .session import Session
from .tasks import TaskContext

EXTRAS_KEY = generation.EXTRAS_KEY


def start(session: Session, ctx: TaskContext, text: str, **settings: Any) -> GenerationStep:
    """Job: read the prompt, pick the first token; the state for `step` is kept in the session."""
    return generation.begin(session, ctx, text, GenerationSettings(**settings))


def step(session: Session, ctx: TaskContext, run_id: int, max_new_tokens: int | None = None) -> GenerationStep:
    """Job: the next token of run `run_id`; `max_new_tokens` sets a new total, to continue a finished run."""
    return generation.advance(session, ctx, run_id, max_new_tokens)


def generate(session: Session, ctx: TaskContext, text: str, **settings: Any) -> list[GenerationStep]:
    """All steps in one call (scripts, tests, benchmarks); stops where the view would."""
    steps = [start(session, ctx, text, **settings)]
    while not steps[-1].finished:
        steps.append(step(session, ctx, steps[-1].run_id))
    return steps


def attention_row(session: Session, ctx: TaskContext, run_id: int, step: int) -> StepAttention:
    """Job: the attention row (mean over heads, per layer) of the position that predicted `step`."""
    return generation.step_attention(session, run_id, step)
