"""Quantization jobs the engine runs for the quantization dial: `fn(session, ctx, **kwargs)`."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from . import quantization as qz
from .errors import LlmvizError, QuantizationMemoryError
from .quantization_results import DialState, HeadDiff, ModeReport, precision
from .quantization_state import state_of
from .quantization_variants import variant_for
from .session import Session
from .tasks import TaskContext


def dial_state(session: Session, ctx: TaskContext) -> DialState:
    """Job: which precisions can run for the loaded model on its device, and why not where not."""
    return qz.dial_state_of(session, state_of(session), ctx)


def visit(session: Session, ctx: TaskContext, mode: str, trace_id: int, layer: int = 0, head: int = 0,
          memory_limit_bytes: int | None = None) -> ModeReport:
    """Job: turn the dial to `mode`: load (or take from the cache) that variant and compare it on the current text.

    `memory_limit_bytes` replaces the measured free memory in the budget check.
    """
    p = precision(mode)
    trace = session.require_trace(trace_id)
    state = state_of(session)
    dial = state.dial or qz.dial_state_of(session, state, ctx)
    loaded, entry, from_cache = variant_for(session, state, dial, p, ctx, memory_limit_bytes)
    try:
        return qz.measure(session, state, p, loaded, entry, from_cache, trace, layer, head, ctx)
    except (MemoryError, torch.OutOfMemoryError) as exc:
        if entry is not None:
            state.variants.pop(p.key, None)
        state.last_traces.clear()
        raise QuantizationMemoryError(
            f"Ran out of memory while running {p.label} on this text ({type(exc).__name__}); the variant was "
            "dropped and the reference model stays loaded. Try a shorter text.") from exc


def refresh(session: Session, ctx: TaskContext, modes: Sequence[str], trace_id: int, layer: int = 0,
            head: int = 0) -> tuple[ModeReport, ...]:
    """Job: measure the already loaded precisions among `modes` on the current text (nothing is loaded)."""
    trace = session.require_trace(trace_id)
    state = state_of(session)
    dial = state.dial or qz.dial_state_of(session, state, ctx)
    reports = []
    for key in modes:
        p = precision(key)
        if key == dial.reference_key:
            reports.append(qz.measure(session, state, p, session.require_model(), None, True, trace, layer, head, ctx,
                                      keep=False))
        elif key in state.variants:
            entry = state.variants[key]
            reports.append(qz.measure(session, state, p, entry.loaded, entry, True, trace, layer, head, ctx, keep=False))
    return tuple(reports)


def head_diff(session: Session, ctx: TaskContext, mode: str, trace_id: int, layer: int, head: int) -> HeadDiff:
    """Job: another head of the last visited precision, against the reference."""
    trace = session.require_trace(trace_id)
    state = state_of(session)
    obs, var_trace = state.reference, state.last_traces.get(mode)
    if obs is None or obs.trace_id != trace.id or var_trace is None:
        raise LlmvizError(f"{precision(mode).label} is no longer loaded for this text; turn the dial to it again.")
    found = qz.head_difference(mode, trace.id, obs.trace, var_trace, layer, head)
    if found is None:
        raise LlmvizError(trace.attention_note or "This model's attention was not captured.")
    return found
