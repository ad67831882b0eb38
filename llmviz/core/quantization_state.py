"""The quantization dial's engine-side state, kept in `session.extras["quantization"]` between jobs.

Loaded variants live in a memory-bounded LRU cache while the reference (the session's
model) stays loaded; the reference's outputs for the current text are kept so turning the
dial runs only the variant.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .models import LoadedModel
from .quantization_results import DialState
from .session import Session
from .trace_data import TraceData

EXTRAS_KEY = "quantization"


class _CastWarningFilter(logging.Filter):
    """bitsandbytes logs 'inputs will be cast to float16' on every 8-bit layer call; the mode note says it once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "will be cast from" not in record.getMessage()


logging.getLogger("bitsandbytes.autograd._functions").addFilter(_CastWarningFilter())


@dataclass
class Variant:
    """One loaded precision and what loading it cost."""

    key: str
    loaded: LoadedModel
    load_s: float
    rss_delta: int | None
    cuda_delta: int | None
    size_bytes: int


@dataclass
class Observation:
    """The reference's outputs for one text (kept while the text is current)."""

    trace_id: int
    tokens: int
    trace: TraceData
    logprobs: Any  # torch.Tensor [T, V] float32 on the CPU, or None without logits
    forward_s: float


@dataclass
class QuantizationState:
    """Everything the dial keeps in the engine between jobs."""

    variants: OrderedDict[str, Variant] = field(default_factory=OrderedDict)
    reference: Observation | None = None
    last_traces: dict[str, TraceData] = field(default_factory=dict)  # the latest visit's variant trace
    dial: DialState | None = None


def state_of(session: Session) -> QuantizationState:
    """The session's dial state (created on first use)."""
    state = session.extras.get(EXTRAS_KEY)
    if state is None:
        state = session.extras[EXTRAS_KEY] = QuantizationState()
    return state


def cached_variant(session: Session, mode: str) -> LoadedModel | None:
    """The cached model of `mode` (tests and benchmarks inspect its modules)."""
    entry = state_of(session).variants.get(mode)
    return entry.loaded if entry else None
