"""Loading the dial's variants: each precision from the reference model's own source, on the
reference's device, measured as it loads and kept in a memory-bounded LRU cache.

Simulated precisions (INT2, INT1) load in the reference's dtype and then round the weights
of the layers bitsandbytes would quantize, in place (`simulate_rounding`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import time
from typing import Any, NamedTuple

import psutil
import torch
from transformers import BitsAndBytesConfig
from transformers.pytorch_utils import Conv1D

from .errors import LlmvizError, ModelLoadError, QuantizationMemoryError
from .models import LoadedModel, load_model
from .quantization_probe import compute_dtype, convertible_linears, device_type, free_bytes
from .quantization_results import DTYPE_KEYS, DialState, Precision, precision
from .quantization_state import QuantizationState, Variant
from .session import Session
from .tasks import TaskContext

#: Cached variants may use at most this share of the memory free for them.
CACHE_SHARE = 0.5
#: Loading needs more than the final weights (a shard in flight, quantization buffers).
LOAD_OVERHEAD = 1.3


def bnb_config(p: Precision, compute: str) -> Any:
    """transformers' bitsandbytes settings for `p`, computing in the `compute` dtype."""
    if p.kind == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=p.quant_type,
                              bnb_4bit_use_double_quant=p.double_quant,
                              bnb_4bit_compute_dtype=getattr(torch, compute))


def rtn_absmax(weight: torch.Tensor, bits: int, channel_dim: int = 0) -> torch.Tensor:
    """Round to nearest on 2**bits levels evenly spaced from -absmax to +absmax of each channel.

    INT2 gives the levels {-a, -a/3, a/3, a}, INT1 gives {-a, a} (the sign times absmax).
    """
    levels = 2**bits - 1  # number of steps between -absmax and +absmax
    w = weight.float()
    reduce = [d for d in range(w.dim()) if d != channel_dim % w.dim()]
    absmax = w.abs().amax(dim=reduce, keepdim=True)
    scale = torch.where(absmax > 0, absmax, torch.ones_like(absmax))
    q = torch.round((w / scale + 1) * levels / 2).clamp(0, levels)
    return (q * 2 / levels - 1) * absmax


def simulate_rounding(model: torch.nn.Module, bits: int, ctx: TaskContext | None = None) -> int:
    """Round the weights of the layers bitsandbytes would quantize, in place; returns how many layers."""
    linears = convertible_linears(model)
    with torch.no_grad():
        for i, (_, module) in enumerate(linears):
            if ctx is not None:
                ctx.progress(f"Rounding weights to {bits} bit (simulated)", i / max(1, len(linears)))
            channel_dim = 1 if isinstance(module, Conv1D) else 0  # Conv1D stores [in, out]
            module.weight.copy_(rtn_absmax(module.weight, bits, channel_dim).to(module.weight.dtype))
    return len(linears)


class LinearBytes(NamedTuple):
    """Storage of the layers a precision quantizes."""

    total: int  # weights plus quantization constants (absmax, SCB, nested scales)
    fp32: int  # the same weights in fp32
    constants: int  # the quantization constants alone: get_memory_footprint() does not see them
    count: int
    module_class: str


def linear_bytes(model: torch.nn.Module, simulated: bool = False) -> LinearBytes:
    """What the quantized (or, for simulated precisions, rounded) linear layers store."""
    quantized = bnb_layers(model)
    if simulated or not quantized:
        plain = [m for _, m in convertible_linears(model)]
        stored = sum(m.weight.numel() * m.weight.element_size() for m in plain)
        return LinearBytes(stored, sum(m.weight.numel() * 4 for m in plain), 0, len(plain), "Linear")
    seen: set[int] = set()
    weights = constants = fp32 = 0
    for m in quantized:
        if type(m).__name__ == "Linear8bitLt":
            extra = [getattr(m.weight, "SCB", None), getattr(m.state, "SCB", None)]
            fp32 += m.weight.numel() * 4
        else:
            extra = quant_state_tensors(m.weight.quant_state)
            fp32 += math.prod(m.weight.quant_state.shape) * 4
        weights += m.weight.numel() * m.weight.element_size()
        for t in extra:
            if t is not None and t.data_ptr() not in seen:
                seen.add(t.data_ptr())
                constants += t.numel() * t.element_size()
    return LinearBytes(weights + constants, fp32, constants, len(quantized), type(quantized[0]).__name__)


def bnb_layers(model: torch.nn.Module) -> list:
    """The model's bitsandbytes layers (none when bitsandbytes is not installed)."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return []
    import bitsandbytes as bnb

    return [m for m in model.modules() if isinstance(m, (bnb.nn.Linear8bitLt, bnb.nn.Linear4bit))]


def quant_state_tensors(qs: Any) -> list:
    if qs is None:
        return []
    found = [v for v in vars(qs).values() if isinstance(v, torch.Tensor)]
    return found + quant_state_tensors(getattr(qs, "state2", None))


def load_variant(ref: LoadedModel, p: Precision, ctx: TaskContext) -> Variant:
    """Load `p` from the reference's own source, on the reference's device; measure what it costs."""
    device = device_type(ref)
    dtype = p.dtype if p.kind == "dtype" else ref.info.dtype if ref.info.dtype in DTYPE_KEYS else "auto"
    spec = dataclasses.replace(ref.spec, device="cuda" if device == "cuda" else "cpu", dtype=dtype)
    config = bnb_config(p, compute_dtype(ref)) if p.uses_bitsandbytes else None
    cuda = device == "cuda"
    # load_model collects garbage itself, so the RSS baseline needs no gc.collect() first.
    rss0 = psutil.Process().memory_info().rss
    cuda0 = torch.cuda.memory_allocated() if cuda else 0
    started = time.perf_counter()
    try:
        loaded = load_model(spec, ctx, quantization_config=config)
    except ModelLoadError as exc:
        raise ModelLoadError(f"Could not load the {p.label} variant. {exc}") from exc
    if p.simulated:
        simulate_rounding(loaded.model, p.bits, ctx)
    load_s = time.perf_counter() - started
    if cuda:
        torch.cuda.synchronize()
    rss_delta = psutil.Process().memory_info().rss - rss0
    cuda_delta = torch.cuda.memory_allocated() - cuda0 if cuda else None
    return Variant(p.key, loaded, load_s, rss_delta, cuda_delta, int(loaded.model.get_memory_footprint()))


def make_room(state: QuantizationState, key: str, need: int, room: int) -> None:
    """Refuse if `need` can never fit in `room`; else evict least recently used variants to fit."""
    p = precision(key)
    if need * LOAD_OVERHEAD > room:
        raise QuantizationMemoryError(
            f"Not enough memory for {p.label}: loading it needs about {need * LOAD_OVERHEAD / 2**30:.2f} GiB, "
            f"but only {room / 2**30:.2f} GiB is free for variants. The reference model stays loaded; close other "
            "programs or choose a lower precision.")
    while state.variants and sum(v.size_bytes for v in state.variants.values()) + need > room * CACHE_SHARE:
        _, old = state.variants.popitem(last=False)
        state.last_traces.pop(old.key, None)
        del old


def variant_for(session: Session, state: QuantizationState, dial: DialState, p: Precision, ctx: TaskContext,
                memory_limit_bytes: int | None) -> tuple[LoadedModel, Variant | None, bool]:
    """(model, cache entry, from cache) for `p`; the reference itself for its own position."""
    ref = session.require_model()
    if p.key == dial.reference_key:
        return ref, None, True
    status = dial.status(p.key)
    if not status.available and not status.memory_only:  # memory is checked again below, with today's numbers
        raise LlmvizError(f"{p.label} cannot run here: {status.reason}")
    if p.key in state.variants:
        state.variants.move_to_end(p.key)
        entry = state.variants[p.key]
        return entry.loaded, entry, True
    cached = sum(v.size_bytes for v in state.variants.values())
    room = memory_limit_bytes if memory_limit_bytes is not None else free_bytes(ref) + cached
    make_room(state, p.key, status.estimated_bytes, room)
    ctx.progress(f"Loading the {p.label} variant", 0.0)
    try:
        entry = load_variant(ref, p, ctx)
    except (MemoryError, torch.OutOfMemoryError) as exc:
        raise QuantizationMemoryError(
            f"Ran out of memory while loading {p.label} ({type(exc).__name__}). The reference model stays "
            "loaded; choose a lower precision or free memory.") from exc
    ctx.check()  # a newer dial position superseded this one: do not cache what nobody asked for
    state.variants[p.key] = entry
    return entry.loaded, entry, False

