"""Walking a model into a `ModuleTree` (the model-tree view's arrays), and the weight histogram.

The counting rules (tied weights once, 4-bit weights as the weights they represent) are
described with the types in `structure_results`.  The histogram reads every weight under a
module in two passes (range, then counts) so that memory stays bounded.
"""

from __future__ import annotations

import gc
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .errors import LlmvizError
from .structure_results import ModuleTree, ParamInfo, WeightHistogram
from .tasks import TaskContext

if TYPE_CHECKING:  # the session imports models, which import this module
    from .session import Session

QUANTIZED_TYPES = frozenset({"Params4bit", "Int8Params"})

# ------------------------------------------------------------------ counting one parameter


def represented_numel(p: torch.Tensor) -> int:
    """Weights a parameter stands for: the original count for packed 4-bit bitsandbytes params."""
    return math.prod(represented_shape(p))


def represented_shape(p: torch.Tensor) -> tuple[int, ...]:
    """The shape the parameter stands for (a 4-bit weight's unpacked shape, from its quant_state)."""
    qs = getattr(p, "quant_state", None)
    shape = getattr(qs, "shape", None) if qs is not None else None
    return tuple(shape if shape is not None else p.shape)


def quant_state_bytes(p: torch.Tensor) -> int:
    """Bytes of a quantized parameter's scales: int8 row scales (SCB), or a 4-bit weight's absmax
    (and its own scales when double-quantized) and code book."""
    scb = getattr(p, "SCB", None)
    total = scb.numel() * scb.element_size() if scb is not None and hasattr(scb, "element_size") else 0
    qs = getattr(p, "quant_state", None)
    while qs is not None:
        for name in ("absmax", "code", "offset"):
            t = getattr(qs, name, None)
            if t is not None and hasattr(t, "element_size"):
                total += t.numel() * t.element_size()
        qs = getattr(qs, "state2", None)
    return total


def _joined(names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    return ", ".join(sorted(set(names)))


# ------------------------------------------------------------------ the walk


def module_tree(model: torch.nn.Module) -> ModuleTree:
    """Walk the model once; O(modules + parameters) so that 10^5-module models open quickly.

    The walk allocates a few hundred thousand small objects and creates no reference cycles, so
    the cyclic garbage collector is paused meanwhile: otherwise a full collection over the
    model's own objects can start in the middle and triple the time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _walk(model)
    finally:
        if enabled:
            gc.enable()


def _walk(model: torch.nn.Module) -> ModuleTree:
    """Build the ModuleTree.

    Pass 1 walks the modules with an explicit stack instead of `named_modules()` (same
    pre-order, same de-duplication of a module reachable twice), which gives each node's
    parent without splitting paths.  Pass 2 visits only the modules that own parameters.
    Children are stored as CSR arrays built by numpy, not 10^5 small tuples.
    """
    paths: list[str] = []
    classes: list[str] = []
    parent: list[int] = []
    depth: list[int] = []
    owners: list[tuple[int, str, dict]] = []
    seen: set[int] = set()
    stack: list[tuple[str, Any, int, int]] = [("", model, -1, 0)]
    while stack:
        path, module, par, d = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        i = len(paths)
        paths.append(path)
        classes.append(type(module).__name__)
        parent.append(par)
        depth.append(d)
        prefix = path + "." if path else ""
        if module._modules:
            for name, child in reversed(module._modules.items()):
                if child is not None:
                    stack.append((prefix + name, child, i, d + 1))
        if module._parameters:
            owners.append((i, prefix, module._parameters))
    n_nodes = len(paths)
    own = np.zeros(n_nodes, dtype=np.int64)
    trainable = np.zeros(n_nodes, dtype=np.int64)
    nbytes = np.zeros(n_nodes, dtype=np.int64)
    per_use = np.zeros(n_nodes, dtype=np.int64)
    dtypes = [""] * n_nodes
    devices = [""] * n_nodes
    empty: tuple[ParamInfo, ...] = ()
    params: list[tuple[ParamInfo, ...]] = [empty] * n_nodes
    quantized = [False] * n_nodes
    owner: dict[int, str] = {}
    dtype_names: dict[Any, str] = {}  # str(torch.dtype) and str(device) are slow; ask once per kind
    device_names: dict[Any, str] = {}
    for i, prefix, module_params in owners:
        infos: list[ParamInfo] = []
        devs: list[str] = []
        n = t = b = u = 0
        q = False
        for pname, p in module_params.items():
            if p is None:
                continue
            is_q = type(p).__name__ in QUANTIZED_TYPES
            shape = represented_shape(p) if is_q else tuple(p.shape)
            count = math.prod(shape)
            q = q or is_q
            dtype = dtype_names.get(p.dtype)
            if dtype is None:
                dtype = dtype_names[p.dtype] = str(p.dtype).replace("torch.", "")
            device = device_names.get(p.device)
            if device is None:
                device = device_names[p.device] = str(p.device)
            devs.append(device)
            storage = f"packed {dtype} {list(p.shape)}" if is_q and tuple(p.shape) != shape else ""
            u += count
            first = owner.get(id(p))
            if first is not None:
                infos.append(ParamInfo(pname, shape, dtype, storage, first))
                continue
            owner[id(p)] = prefix + pname
            infos.append(ParamInfo(pname, shape, dtype, storage))
            n += count
            if p.requires_grad:
                t += count
            b += p.numel() * p.element_size() + (quant_state_bytes(p) if is_q else 0)
        if not infos:
            continue
        own[i], trainable[i], nbytes[i], per_use[i] = n, t, b, u
        dtypes[i] = infos[0].dtype if len(infos) == 1 else _joined([info.dtype for info in infos])
        devices[i] = devs[0] if len(devs) == 1 else _joined(devs)
        params[i] = tuple(infos)
        quantized[i] = q
    par = np.asarray(parent, dtype=np.int32)
    depth_arr = np.asarray(depth, dtype=np.int16)
    total, train, store, uses = (_subtree_sums(a, par, depth_arr) for a in (own, trainable, nbytes, per_use))
    child_start, child_index, row = _children_csr(par)
    return ModuleTree(
        paths=tuple(paths), classes=tuple(classes), parent=par, row=row,
        depth=depth_arr, child_start=child_start, child_index=child_index,
        own_params=own, total_params=total, trainable_params=train, storage_bytes=store, per_use_params=uses,
        dtypes=tuple(dtypes), devices=tuple(devices), params=tuple(params), quantized=tuple(quantized),
    )


def _subtree_sums(values: np.ndarray, parent: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Each node's value plus all its descendants', one numpy step per tree level (deepest first)."""
    out = values.copy()
    for d in range(int(depth.max(initial=0)), 0, -1):
        nodes = np.nonzero(depth == d)[0]
        np.add.at(out, parent[nodes], out[nodes])
    return out


def _children_csr(parent: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start [N+1], child indices [N-1], row [N]) with node i's children at child_index[start[i]:start[i+1]]."""
    n = len(parent)
    if n <= 1:
        return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(n, dtype=np.int32)
    nodes = np.arange(1, n, dtype=np.int32)
    order = nodes[np.argsort(parent[1:], kind="stable")]  # grouped by parent, tree order within a group
    counts = np.bincount(parent[1:], minlength=n)
    start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=start[1:])
    row = np.zeros(n, dtype=np.int32)
    row[order] = np.arange(n - 1) - start[parent[order]]
    return start, order, row


# ------------------------------------------------------------------ weight histograms

HIST_CHUNK = 1 << 22  # weights binned at a time: bounds the int64 bin-index temporaries to 32 MiB


def submodule(model: torch.nn.Module, path: str) -> torch.nn.Module:
    """The module at `path` (LlmvizError when the model has none there)."""
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

    Indexing and torch.bincount count integers exactly, and faster than histc's float counts.
    """
    index = ((values.float() - lo) * scale).to(torch.int64)
    return index.clamp_(0, bins - 1)


def weight_histogram(model: torch.nn.Module, path: str, ctx: TaskContext, bins: int = 100) -> WeightHistogram:
    """Histogram of every weight under `path`, in two passes (range, then counts) to bound memory."""
    module = submodule(model, path)
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


def loaded_tree(session: Session, ctx: TaskContext | None = None) -> ModuleTree:
    """The loaded model's module tree, computed once per model (Session.extras is cleared on a new model)."""
    tree = session.extras.get("structure.tree")
    if tree is None:
        if ctx is not None:
            ctx.progress("Reading the module tree", None)
        tree = session.extras["structure.tree"] = module_tree(session.require_model().model)
    return tree



# ------------------------------------------------------------------ the other structure views' jobs


