"""The worker's state: the loaded model and the latest trace.

Owned by exactly one thread (the app's ModelHost worker, or the command line's main
thread).  A failed or cancelled load leaves the previous model in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .config_check import ConfigFigures
from .models import LoadedModel, free, load_model
from .specs import ModelInfo, ModelSpec
from .tasks import TaskContext
from .trace import run_trace
from .trace_data import TraceData


class Session:
    """Holds at most one model and the last trace made with it."""

    def __init__(self) -> None:
        self.loaded: LoadedModel | None = None
        self.trace: TraceData | None = None
        #: Worker-side state that features keep between jobs (e.g. quantized variants of the
        #: model, a generation in progress), keyed by feature name; cleared when the model changes.
        self.extras: dict[str, Any] = {}

    @property
    def info(self) -> ModelInfo | None:
        return self.loaded.info if self.loaded else None

    def require_model(self) -> LoadedModel:
        if self.loaded is None:
            from .errors import LlmvizError

            raise LlmvizError("No model is loaded yet.")
        return self.loaded

    def load(self, spec: ModelSpec, ctx: TaskContext | None = None,
             check: Callable[[ConfigFigures], None] | None = None) -> ModelInfo:
        """Load `spec`; only on success does it replace (and free) the current model.

        `check` sees the configuration's figures before any weights load (see load_model)."""
        new = load_model(spec, ctx, check=check)
        old, self.loaded, self.trace = self.loaded, new, None
        self.extras.clear()
        free(old)
        return new.info

    def run(self, text: str, ctx: TaskContext | None = None, max_tokens: int | None = None) -> TraceData:
        trace = run_trace(self.require_model(), text, ctx, max_tokens)
        self.trace = trace
        return trace

    def require_trace(self, trace_id: int | None = None) -> TraceData:
        from .errors import LlmvizError

        if self.trace is None or (trace_id is not None and self.trace.id != trace_id):
            raise LlmvizError("That result is no longer current; the text or model changed.")
        return self.trace
