"""Worker jobs of the model-structure views: module tree, weight histogram, architecture summary,
families, measured layer summary and the block builder.

Each is `fn(session, ctx, **kwargs)` and returns a frozen, torch-free result.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .architecture import ArchitectureSummary, FamiliesComparison, block_index, load_families, summarize
from .block_builder import BlockSpec, BuiltBlock, build_and_run, compare_with_loaded
from .errors import LlmvizError
from .layer_summary import LayerSummary, measure
from .models import LoadedModel
from .session import Session
from .structure import ModuleTree, WeightHistogram, module_tree
from .tasks import TaskContext

HIST_CHUNK = 1 << 22  # weights binned at a time: bounds the int64 bin-index temporaries to 32 MB


def structure(session: Session, ctx: TaskContext) -> ModuleTree:
    return loaded_tree(session, ctx)


def submodule(model: torch.nn.Module, path: str) -> torch.nn.Module:
    try:
        return model.get_submodule(path)
    except AttributeError:
        raise LlmvizError(f"This model has no module called {path!r} (was the model changed?).") from None


def weight_values(p: torch.Tensor) -> tuple[torch.Tensor, str]:
    """A parameter's values as float32 (dequantized for bitsandbytes weights) and a note saying how."""
    kind = type(p).__name__
    if kind == "Params4bit" and getattr(p, "quant_state", None) is not None:
        import bitsandbytes.functional as bnbf

        qs = p.quant_state
        return bnbf.dequantize_4bit(p.data, qs).float(), f"dequantized from {qs.quant_type}"
    if kind == "Int8Params" and getattr(p, "SCB", None) is not None:
        return p.data.float() * (p.SCB.float()[:, None] / 127.0), "dequantized from int8"
    return p.detach().float(), ""


def bin_index(values: torch.Tensor, lo: float, scale: float, bins: int) -> torch.Tensor:
    """Equal-width bin of each value, as torch.histc bins them (the maximum falls in the last bin).

    Indexing and torch.bincount count integers exactly and took half the time of histc's
    float counts on SmolLM2's 134 M weights.
    """
    index = ((values.float() - lo) * scale).to(torch.int64)
    return index.clamp_(0, bins - 1)


def module_weights(session: Session, ctx: TaskContext, path: str, bins: int = 100) -> WeightHistogram:
    """Histogram of every weight under `path`, in two passes (range, then counts) to bound memory."""
    module = submodule(session.require_model().model, path)
    params = list(module.parameters())  # a shared tensor once
    if not params:
        return _no_values(path, "This module has no parameters of its own or below it.")
    if any(p.is_meta for p in params):
        return _no_values(path, "The weights are on the meta device (structure only, no values).")
    lo, hi, total, zeros = float("inf"), float("-inf"), 0, 0
    s1 = s2 = 0.0
    notes: set[str] = set()
    with torch.inference_mode():
        for k, p in enumerate(params):
            ctx.progress("Weight histogram: range", k / (2 * len(params)))
            v, note = weight_values(p)
            if note:
                notes.add(note)
            v = v.reshape(-1)
            small, large = torch.aminmax(v)
            lo, hi = min(lo, float(small)), max(hi, float(large))
            s1 += float(v.sum(dtype=torch.float64))
            s2 += float(torch.linalg.vector_norm(v, dtype=torch.float64)) ** 2
            zeros += v.numel() - int(torch.count_nonzero(v))
            total += v.numel()
        if hi <= lo:
            hi = lo + 1e-6
        counts = torch.zeros(bins, dtype=torch.int64)
        scale = bins / (hi - lo)
        for k, p in enumerate(params):
            ctx.progress("Weight histogram: counts", 0.5 + k / (2 * len(params)))
            v, _ = weight_values(p)
            for chunk in v.reshape(-1).split(HIST_CHUNK):
                counts += torch.bincount(bin_index(chunk, lo, scale, bins), minlength=bins).cpu()
    mean = s1 / total
    std = float(np.sqrt(max(0.0, s2 / total - mean * mean)))
    return WeightHistogram(
        path=path, counts=counts.numpy(), edges=np.linspace(lo, hi, bins + 1), count=total,
        mean=mean, std=std, min=lo, max=hi, zeros=zeros, tensors=len(params), note=", ".join(sorted(notes)),
    )


def _no_values(path: str, why: str) -> WeightHistogram:
    z = np.zeros(0)
    return WeightHistogram(path, z.astype(np.int64), z, 0, 0.0, 0.0, 0.0, 0.0, 0, 0, why)



# ------------------------------------------------------------------ the other structure views' jobs


def loaded_tree(session: Session, ctx: TaskContext | None = None) -> ModuleTree:
    """The loaded model's module tree, computed once per model (Session.extras is cleared on a new model)."""
    tree = session.extras.get("structure.tree")
    if tree is None:
        if ctx is not None:
            ctx.progress("Reading the module tree", None)
        tree = session.extras["structure.tree"] = module_tree(session.require_model().model)
    return tree


def first_module_called(loaded: LoadedModel, tree: ModuleTree, block: int) -> int | None:
    """Tree node of the first module with weights that runs in `block`, from a 2-token forward with hooks.

    None when the weights are on the meta device or the forward fails (the caller falls back to names).
    """
    if block < 0 or any(p.is_meta for p in loaded.model.parameters()):
        return None
    from .trace import _forward_module, forward_inputs

    end = block + 1
    while end < len(tree) and tree.depth[end] > tree.depth[block]:
        end += 1
    order: list[int] = []

    def noting(i: int):  # type: ignore[no-untyped-def]
        def hook(*_args) -> None:  # type: ignore[no-untyped-def]
            order.append(i)
        return hook

    handles = [loaded.model.get_submodule(tree.paths[i]).register_forward_pre_hook(noting(i))
               for i in range(block + 1, end) if tree.own_params[i] or tree.tied(i)]
    ids = loaded.tokenizer("Hello world", add_special_tokens=True)["input_ids"][:2] or [0]
    kwargs = dict(forward_inputs(loaded, np.asarray(ids)), use_cache=False)
    try:
        with torch.inference_mode():
            _forward_module(loaded)(**kwargs)
    except Exception:  # noqa: BLE001 - an unusual forward signature only costs the measured placement
        return None
    finally:
        for h in handles:
            h.remove()
    return order[0] if order else None


def _loaded_summary(session: Session, ctx: TaskContext) -> ArchitectureSummary:
    summary = session.extras.get("structure.summary")
    if summary is None:
        loaded = session.require_model()
        info = loaded.info
        ctx.progress("Summarizing the architecture", None)
        tree = loaded_tree(session, ctx)
        first = first_module_called(loaded, tree, block_index(tree, info.num_layers))
        summary = session.extras["structure.summary"] = summarize(
            loaded.model, loaded.model.config, title=info.title, source=info.source, is_decoder=info.is_decoder,
            is_encoder_decoder=info.is_encoder_decoder, tree=tree, first_called=first)
    return summary


def architecture(session: Session, ctx: TaskContext) -> ArchitectureSummary:
    """The Config tab: the loaded model's architecture facts."""
    return _loaded_summary(session, ctx)


_bundled_summaries: dict[str, ArchitectureSummary] = {}


def bundled_summary(source: str, ctx: TaskContext) -> ArchitectureSummary:
    """A bundled model's numbers from its config, built on the meta device (no weights read; exact counts)."""
    if source not in _bundled_summaries:
        from transformers import AutoConfig

        from .bundled import bundled_model, model_folder
        from .models import _model_class

        ctx.progress(f"Reading the configuration of {source}", None)
        config = AutoConfig.from_pretrained(model_folder(source, ctx), trust_remote_code=False)
        cls, is_decoder, is_enc_dec = _model_class(config)
        with torch.device("meta"):
            model = cls.from_config(config)
        _bundled_summaries[source] = summarize(
            model, config, title=bundled_model(source).title, source=source, is_decoder=is_decoder,
            is_encoder_decoder=is_enc_dec, measured_on="built from its config on the meta device")
    return _bundled_summaries[source]


def families(session: Session, ctx: TaskContext) -> FamiliesComparison:
    """The notebook's families table and the bundled models side by side (the loaded one from its weights)."""
    from .bundled import BUNDLED_MODELS

    info = session.info
    models = []
    for model in BUNDLED_MODELS.values():
        if info is not None and info.source == model.source:
            models.append(_loaded_summary(session, ctx))
        else:
            models.append(bundled_summary(model.source, ctx))
    loaded_family = _loaded_summary(session, ctx).family if info is not None else None
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
