"""A measured layer summary: what the notebook printed with torchinfo, measured instead of estimated.

Forward hooks on every module record, for the current text, each module's output shape
and the wall time it took (inclusive of its children; 'self' time excludes them).
Parameter counts come from the module tree, so tied weights are counted once; the
'counted per use' column repeats a shared weight at each module that uses it, which is
what torchinfo's total adds up (its 'Total params' counts a tied embedding twice).
The result type is in `layer_summary_results`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from .architecture import block_index
from .layer_summary_results import LayerSummary
from .models import LoadedModel
from .structure_results import ModuleTree
from .tasks import TaskContext
from .trace import forward_inputs, forward_module, layer_progress

#: Keep every position's logits only while they stay small; beyond this the head runs on the last position.
FULL_LOGITS_BYTES = 512 * 2**20


def _first_tensor(out: Any) -> Any:
    """The main tensor of a module's output: itself, or the first tensor in a tuple/list/ModelOutput.

    (torchinfo shows the *last* value of a ModelOutput, e.g. BERT's pooler output or Llama's
    cache; the first, last_hidden_state or logits, is the one a reader expects.)"""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    values = out.values() if isinstance(out, dict) else out if isinstance(out, (tuple, list)) else ()
    for value in values:
        found = _first_tensor(value)
        if found is not None:
            return found
    return None


class _Timer:
    """Forward pre/post hooks that time every module call and note its output shape."""

    def __init__(self) -> None:
        self.order: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self.shapes: dict[str, list[int]] = {}
        self.kinds: dict[str, str] = {}
        self._started: dict[str, list[float]] = {}

    def pre(self, path: str) -> Any:
        def hook(_module: Any, _args: Any) -> None:
            self.order.setdefault(path, len(self.order))
            self._started.setdefault(path, []).append(time.perf_counter())
        return hook

    def post(self, path: str) -> Any:
        def hook(_module: Any, _args: Any, output: Any) -> None:
            elapsed = time.perf_counter() - self._started[path].pop()
            self.seconds[path] = self.seconds.get(path, 0.0) + elapsed
            self.calls[path] = self.calls.get(path, 0) + 1
            if path not in self.shapes:
                t = _first_tensor(output)
                self.shapes[path] = list(t.shape) if t is not None else []
                self.kinds[path] = type(output).__name__
        return hook


def measure(loaded: LoadedModel, ids: np.ndarray, tree: ModuleTree, ctx: TaskContext,
            trace_id: int = 0) -> LayerSummary:
    """Run the model once on `ids` with a timing hook on every module."""
    import torch

    model = loaded.model
    info = loaded.info
    module = forward_module(loaded)
    root = "" if module is model else _path_of(model, module)
    kwargs: dict[str, Any] = dict(forward_inputs(loaded, ids), use_cache=False, return_dict=True)
    notes: list[str] = []
    if info.is_decoder and len(ids) * info.vocab_size * 4 > FULL_LOGITS_BYTES:
        kwargs["logits_to_keep"] = 1
        notes.append(f"The output head ran on the last position only ({len(ids):,} positions × "
                     f"{info.vocab_size:,} logits would not fit in {FULL_LOGITS_BYTES >> 20} MiB).")
    if info.is_encoder_decoder:
        notes.append("Encoder-decoder model: the summary covers the encoder, as the traces do.")
    timer = _Timer()
    handles = []
    for path, sub in module.named_modules():
        full = f"{root}.{path}".strip(".") if root else path
        handles.append(sub.register_forward_pre_hook(timer.pre(full)))
        handles.append(sub.register_forward_hook(timer.post(full)))
    started = time.perf_counter()
    try:
        with torch.inference_mode(), layer_progress(module, info.num_layers, ctx, "Measuring every module"):
            module(**kwargs)
    finally:
        for h in handles:
            h.remove()
    forward_s = time.perf_counter() - started
    frame = _frame(tree, timer, forward_s)
    chart = _chart_rows(tree, frame, block_index(tree, info.num_layers))
    called = set(timer.order)
    not_run = tuple(p for p in tree.paths if p not in called and (p.startswith(root + ".") if root else p))
    return LayerSummary(
        trace_id=trace_id, model_title=info.title, num_tokens=len(ids), frame=frame, chart=chart,
        forward_s=forward_s, unique_params=tree.total, per_use_params=int(tree.per_use_params[0]),
        tied=tuple(tree.tied_pairs()), not_run=not_run, notes=tuple(notes),
    )


def _path_of(model: torch.nn.Module, module: torch.nn.Module) -> str:
    return next(p for p, m in model.named_modules() if m is module)


def _frame(tree: ModuleTree, timer: _Timer, forward_s: float) -> pd.DataFrame:
    import pandas as pd

    index = {p: i for i, p in enumerate(tree.paths)}
    paths = sorted(timer.order, key=timer.order.__getitem__)
    nodes = [index[p] for p in paths]
    seconds = np.array([timer.seconds.get(p, 0.0) for p in paths])
    child_time = np.zeros(len(paths))
    row_of = {p: r for r, p in enumerate(paths)}
    for r, node in enumerate(nodes):
        parent = int(tree.parent[node])
        while parent >= 0 and tree.paths[parent] not in row_of:  # containers such as ModuleList never run
            parent = int(tree.parent[parent])
        if parent >= 0:
            child_time[row_of[tree.paths[parent]]] += seconds[r]
    return pd.DataFrame({
        "order": np.arange(len(paths)),
        "path": [p or "(model)" for p in paths],
        "class": [tree.classes[n] for n in nodes],
        "depth": [int(tree.depth[n]) for n in nodes],
        "output_shape": ["[" + ", ".join(str(d) for d in timer.shapes.get(p, [])) + "]" for p in paths],
        "output_type": [timer.kinds.get(p, "") for p in paths],
        "calls": [timer.calls.get(p, 0) for p in paths],
        "time_ms": seconds * 1000,
        "self_ms": np.maximum(0.0, seconds - child_time) * 1000,
        "time_pct": seconds / max(forward_s, 1e-12) * 100,
        "parameters": tree.total_params[nodes],
        "parameters_per_use": tree.per_use_params[nodes],
        "own_parameters": tree.own_params[nodes],
        "tied": [tree.tied(n) for n in nodes],
    })


def _chart_rows(tree: ModuleTree, frame: pd.DataFrame, block: int) -> tuple[int, ...]:
    """Rows that split the forward into consecutive parts: each block, and every module beside the
    stack of blocks on the way up to the root (embeddings, final norm, output head)."""
    if block < 0:
        top = [i for i in range(len(tree)) if tree.depth[i] == 1]
        wanted = {tree.paths[i] for i in top}
    else:
        container = int(tree.parent[block])
        spine = set(tree.ancestors(container))
        wanted = {tree.paths[int(k)] for k in tree.children(container)}
        for node in spine:
            wanted.update(tree.paths[int(k)] for k in tree.children(node) if int(k) not in spine)
    paths = frame["path"].tolist()
    return tuple(r for r, p in enumerate(paths) if p in wanted)

