"""Functions the app's worker thread runs on request: `fn(session, ctx, **kwargs)`.

Views name these by dotted path (e.g. 'llmviz.core.attention_jobs.attention_map') so that the GUI
thread never imports torch; the worker imports and calls them.  Each returns a frozen
dataclass of numpy arrays or plain values.
"""

from __future__ import annotations

from .session import Session
from .specs import ModelInfo, ModelSpec
from .tasks import TaskContext

# What transformers imports lazily during a first load or generation; C initialisers hold the
# GIL, so importing them inside a load froze the window for a few hundred milliseconds.
WARM_UP_MODULES = (
    "transformers.generation", "transformers.masking_utils", "transformers.modeling_layers",
    "transformers.processing_utils", "transformers.modeling_gguf_pytorch_utils",
    "transformers.models.llama.modeling_llama", "transformers.models.gpt2.modeling_gpt2",
    "transformers.models.bert.modeling_bert", "transformers.models.bert.tokenization_bert",
)


def warm_up(session: Session, ctx: TaskContext) -> None:
    """Import on the worker what loading and running a model needs (creating the session
    imported torch and transformers themselves).

    The app submits this as soon as its window shows, so that one-time import (seconds,
    with the GIL held in C initialisers) happens up front, labelled, not inside a load.
    """
    import importlib

    ctx.progress("Starting the model engine (importing torch)", None)
    for name in WARM_UP_MODULES:
        importlib.import_module(name)


def load(session: Session, ctx: TaskContext, spec: ModelSpec) -> ModelInfo:
    return session.load(spec, ctx)


def run_text(session: Session, ctx: TaskContext, text: str, max_tokens: int | None = None):  # -> Trace
    return session.run(text, ctx, max_tokens)


def environment(session: Session, ctx: TaskContext) -> dict[str, str]:
    from .environment import environment_report

    return environment_report()
