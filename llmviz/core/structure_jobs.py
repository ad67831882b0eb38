"""Engine jobs of the model-structure views (model tree, layer summary, architecture):
`fn(session, ctx, **kwargs)`, each returning a frozen, torch-free result.
"""

from __future__ import annotations

from dataclasses import replace

from . import architecture as arch
from .architecture_results import ArchitectureSummary, FamiliesComparison, load_families
from .block_builder import build_and_run, compare_with_loaded
from .block_builder_results import BlockSpec, BuiltBlock
from .bundled import BUNDLED_MODELS
from .layer_summary import measure
from .layer_summary_results import LayerSummary
from .session import Session
from .structure import loaded_tree, weight_histogram
from .structure_results import ModuleTree, WeightHistogram
from .tasks import TaskContext


def structure(session: Session, ctx: TaskContext) -> ModuleTree:
    """The model tree: the loaded model's module hierarchy."""
    return loaded_tree(session, ctx)


def module_weights(session: Session, ctx: TaskContext, path: str, bins: int = 100) -> WeightHistogram:
    """Histogram of every weight under the module at `path`."""
    return weight_histogram(session.require_model().model, path, ctx, bins)


def architecture(session: Session, ctx: TaskContext) -> ArchitectureSummary:
    """The Config tab: the loaded model's architecture facts."""
    return arch.loaded_summary(session, ctx)


def families(session: Session, ctx: TaskContext) -> FamiliesComparison:
    """The notebook's families table and the bundled models side by side (the loaded one from its weights)."""
    info = session.info
    models = []
    for model in BUNDLED_MODELS.values():
        if info is not None and info.source == model.source:
            models.append(arch.loaded_summary(session, ctx))
        else:
            models.append(arch.bundled_summary(model.source, ctx))
    loaded_family = arch.loaded_summary(session, ctx).family if info is not None else None
    return FamiliesComparison(load_families(), tuple(models), loaded_family, info.source if info else None)


def layer_summary(session: Session, ctx: TaskContext, trace_id: int) -> LayerSummary:
    """Measure every module of the current model on the current text."""
    trace = session.require_trace(trace_id)
    return measure(session.require_model(), trace.tokens.ids, loaded_tree(session, ctx), ctx, trace.id)


def build_block(session: Session, ctx: TaskContext, spec: BlockSpec) -> BuiltBlock:
    """Build and run the user's block; compare it with one block of the loaded model when there is one."""
    built = build_and_run(spec, ctx)
    if session.loaded is None:
        return replace(built, comparison_note="Load a model to compare with one of its blocks.")
    comparison = compare_with_loaded(built, session.loaded, loaded_tree(session, ctx))
    note = "" if comparison else "llmviz could not find this model's stack of transformer blocks."
    return replace(built, comparison=comparison, comparison_note=note)
