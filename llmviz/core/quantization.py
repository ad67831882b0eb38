"""The quantization dial: the loaded model at other precisions, compared with it live.

Real modes load a variant of the reference model's own source through `models.load_model`:
FP32/BF16/FP16 as torch dtypes, INT8 (bitsandbytes LLM.int8) and NF4/FP4 with or without
double quantization (bitsandbytes 4-bit).  INT2 and INT1 are SIMULATED: the weights of the
layers bitsandbytes would quantize are rounded to 2**bits levels per output channel
(round-to-nearest on an absmax grid) and kept in the load dtype, so they save no memory;
every label says "simulated".

Variants live in a memory-bounded LRU cache in `session.extras["quantization"]` while the
reference (the session's model) stays loaded.  Results are frozen dataclasses of numpy
arrays.  Torch is imported only inside the worker-side functions, because the views import
this module for its result types and the GUI must start without torch.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

import numpy as np

from .bnb_layout import keep_standard_4bit_layout
from .errors import InputError, LlmvizError, ModelLoadError
from .tasks import TaskContext

if TYPE_CHECKING:  # pragma: no cover - types only
    import pandas as pd
    import torch

    from .models import LoadedModel
    from .session import Session
    from .specs import ModelInfo, ModelSpec
    from .trace_data import TraceData

EXTRAS_KEY = "quantization"
TOP_K = 10
#: Full next-token distributions of both models are held for the compared positions; this
#: caps them (SmolLM2: 1,024 positions x 49,152 tokens x 4 bytes = 200 MB per model).
COMPARE_MAX_TOKENS = 1024
COMPARE_MAX_LOGIT_BYTES = 256 * 2**20
#: Cached variants may use at most this share of the memory free for them.
CACHE_SHARE = 0.5
#: Loading needs more than the final weights (a shard in flight, quantization buffers).
LOAD_OVERHEAD = 1.3


class QuantizationMemoryError(LlmvizError):
    """A variant would not fit in memory; nothing was loaded and the reference is untouched."""


# ---------------------------------------------------------------- the precisions


@dataclass(frozen=True)
class Precision:
    """One position of the dial."""

    key: str
    label: str
    short: str  # the dial's label
    bits: int
    kind: str  # 'dtype', 'int8', '4bit' or 'simulated'
    summary: str
    dtype: str = ""  # torch dtype name for kind 'dtype'
    quant_type: str = ""  # 'nf4' / 'fp4' for kind '4bit'
    double_quant: bool = False

    @property
    def simulated(self) -> bool:
        return self.kind == "simulated"

    @property
    def uses_bitsandbytes(self) -> bool:
        return self.kind in ("int8", "4bit")


_SIM = ("SIMULATED: the weights bitsandbytes would quantize are rounded to {n} levels per output channel "
        "(round-to-nearest, absmax grid) and kept in the load dtype, so no memory is saved.")
PRECISIONS: tuple[Precision, ...] = (
    Precision("fp32", "FP32", "FP32", 32, "dtype", "32-bit floats, the CPU default.", dtype="float32"),
    Precision("bf16", "BF16", "BF16", 16, "dtype", "bfloat16: the range of fp32 with an 8-bit mantissa.",
              dtype="bfloat16"),
    Precision("fp16", "FP16", "FP16", 16, "dtype", "IEEE half precision: 11-bit mantissa, largest value 65,504.",
              dtype="float16"),
    Precision("int8", "INT8", "INT8", 8, "int8",
              "bitsandbytes LLM.int8(): int8 weights with one scale per output row; input features with "
              "outliers above 6 are multiplied in fp16."),
    Precision("nf4", "NF4", "NF4", 4, "4bit",
              "bitsandbytes 4-bit NormalFloat: 16 levels spaced for normally distributed weights, one absmax "
              "per block of 64 weights.", quant_type="nf4"),
    Precision("nf4-dq", "NF4 + double quant", "NF4+DQ", 4, "4bit",
              "NF4 whose block scales are themselves quantized to 8 bits (double quantization).",
              quant_type="nf4", double_quant=True),
    Precision("fp4", "FP4", "FP4", 4, "4bit",
              "bitsandbytes 4-bit float (sign, 2 exponent bits, 1 mantissa bit), one absmax per block of 64 "
              "weights.", quant_type="fp4"),
    Precision("fp4-dq", "FP4 + double quant", "FP4+DQ", 4, "4bit",
              "FP4 whose block scales are themselves quantized to 8 bits (double quantization).",
              quant_type="fp4", double_quant=True),
    Precision("int2-sim", "INT2 (simulated)", "INT2 sim", 2, "simulated", _SIM.format(n=4, b=2)),
    Precision("int1-sim", "INT1 (simulated)", "INT1 sim", 1, "simulated", _SIM.format(n=2, b=1)),
)
_BY_KEY = {p.key: p for p in PRECISIONS}
_DTYPE_KEYS = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
_QUANT_KEYS = {"int8": "int8", "nf4": "nf4", "nf4-dq": "nf4-dq", "fp4": "fp4", "fp4-dq": "fp4-dq"}
#: The notebook's theoretical size table.
NOTEBOOK_LEVELS = (("FP32", 32), ("FP16", 16), ("INT8", 8), ("INT4", 4), ("INT2", 2), ("INT1", 1))


def precision(key: str) -> Precision:
    try:
        return _BY_KEY[key]
    except KeyError:
        raise InputError(f"Unknown precision {key!r}; choose one of {', '.join(_BY_KEY)}.") from None


def reference_key(info: ModelInfo) -> str | None:
    """The dial position the loaded model itself occupies (None for dtypes/quantizations not on the dial)."""
    if info.quantization != "none":
        return _QUANT_KEYS.get(info.quantization)
    return _DTYPE_KEYS.get(info.dtype)


# ---------------------------------------------------------------- result types


@dataclass(frozen=True)
class SizeRow:
    """One row of the notebook's table: parameters x bits / 8."""

    level: str
    bits: int
    reduction: float  # times smaller than FP32
    savings_pct: float
    size_bytes: float


def theoretical_sizes(num_parameters: int) -> tuple[SizeRow, ...]:
    return tuple(SizeRow(level, bits, 32 / bits, (1 - bits / 32) * 100, num_parameters * bits / 8)
                 for level, bits in NOTEBOOK_LEVELS)


@dataclass(frozen=True)
class ModeStatus:
    """Whether a dial position can run here; `reason` (shown on hover) when it cannot."""

    key: str
    available: bool
    reason: str = ""
    note: str = ""  # caveats when it can run (emulated dtype, simulated, is the reference)
    estimated_bytes: int = 0
    memory_only: bool = False  # unavailable only for lack of free memory (checked again when visited)


@dataclass(frozen=True)
class DialState:
    """What the dial shows for the loaded model, before anything is measured."""

    model_source: str
    model_title: str
    reference_key: str | None
    reference_label: str  # e.g. 'FP32' or 'NF4 (already quantized in its checkpoint)'
    reference_note: str  # non-empty when the loaded model is already quantized
    device: str
    device_note: str  # where variants load; the CUDA gate message
    num_parameters: int
    quantizable_parameters: int  # weights of the layers bitsandbytes replaces
    quantizable_modules: int
    reference_bytes: int
    statuses: tuple[ModeStatus, ...]
    theoretical: tuple[SizeRow, ...]

    def status(self, key: str) -> ModeStatus:
        return next(s for s in self.statuses if s.key == key)


@dataclass(frozen=True)
class VariantCosts:
    """Measured costs of one precision (not computed from bits)."""

    key: str
    footprint_bytes: int  # model.get_memory_footprint(): parameters and buffers
    constants_bytes: int  # quantization constants (absmax, SCB) that get_memory_footprint() misses
    linear_bytes: int  # the quantized linear layers incl. their scales (absmax, SCB)
    linear_fp32_bytes: int  # the same layers' weights in fp32
    rss_delta_bytes: int | None  # process RSS change while loading (None for the reference)
    cuda_delta_bytes: int | None  # CUDA memory allocated by the load (None without CUDA)
    load_s: float
    forward_s: float  # one forward pass over the compared tokens, all logits
    forward_tokens: int
    from_cache: bool
    is_reference: bool
    device: str
    quantized_modules: int
    module_class: str  # 'Linear8bitLt', 'Linear4bit', 'Linear' ...

    @property
    def memory_bytes(self) -> int:
        """Everything the weights occupy: parameters, buffers and quantization constants."""
        return self.footprint_bytes + self.constants_bytes


@dataclass(frozen=True)
class Comparison:
    """Predictions and hidden states of one precision against the reference, on one text."""

    key: str
    trace_id: int
    num_tokens: int
    full_tokens: int  # tokens in the trace; more than num_tokens when only a prefix was compared
    distribution: str  # 'next-token', 'token' (an encoder's LM head) or '' (no logits)
    kl: np.ndarray  # float32 [T]: KL(reference || variant) per position, nats
    top1_agree: np.ndarray  # bool [T]
    top5_overlap: np.ndarray  # float32 [T]: shared tokens of the two top-5 lists / 5
    nll_reference: np.ndarray  # float32 [T-1]: -log p(actual next token) (decoders)
    nll_variant: np.ndarray
    topk_reference_ids: np.ndarray  # int64 [T, K]
    topk_reference_probs: np.ndarray  # float32 [T, K]
    topk_variant_ids: np.ndarray
    topk_variant_probs: np.ndarray
    pieces: dict[int, str] = field(default_factory=dict, compare=False)  # id -> decoded text of the token
    hidden_relative_error: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # [layers + 1]

    @property
    def has_distributions(self) -> bool:
        return bool(self.distribution)

    @property
    def mean_kl(self) -> float:
        return float(self.kl.mean()) if self.kl.size else math.nan

    @property
    def top1_rate(self) -> float:
        return float(self.top1_agree.mean()) if self.top1_agree.size else math.nan

    @property
    def top5_rate(self) -> float:
        return float(self.top5_overlap.mean()) if self.top5_overlap.size else math.nan

    @property
    def perplexity_reference(self) -> float:
        return float(np.exp(self.nll_reference.mean())) if self.nll_reference.size else math.nan

    @property
    def perplexity_variant(self) -> float:
        return float(np.exp(self.nll_variant.mean())) if self.nll_variant.size else math.nan

    @property
    def flips(self) -> np.ndarray:
        """Positions whose most likely token differs from the reference's."""
        return np.flatnonzero(~self.top1_agree)


@dataclass(frozen=True)
class HeadDiff:
    """One attention head of the reference and of a variant, and reference minus variant."""

    key: str
    trace_id: int
    layer: int
    head: int
    reference: np.ndarray  # float32 [T, T]
    variant: np.ndarray
    note: str = ""

    @property
    def diff(self) -> np.ndarray:
        return self.reference - self.variant

    @property
    def max_abs(self) -> float:
        return float(np.abs(self.diff).max()) if self.diff.size else 0.0


@dataclass(frozen=True)
class ModeReport:
    """Everything one visit of a dial position measured."""

    key: str
    costs: VariantCosts
    comparison: Comparison
    head: HeadDiff | None
    cached: tuple[str, ...]  # the variants now in the cache, oldest first


# ---------------------------------------------------------------- tables (pandas, no torch)


def comparison_frame(reports: Sequence[ModeReport], trace_id: int | None) -> pd.DataFrame:
    """One row per visited precision, in dial order; quality columns are empty for other texts."""
    import pandas as pd

    order = {p.key: i for i, p in enumerate(PRECISIONS)}
    rows = []
    for r in sorted(reports, key=lambda r: order[r.key]):
        p, c, q = precision(r.key), r.costs, r.comparison
        current = q.trace_id == trace_id
        mb = lambda n: n / 2**20 if n is not None else math.nan  # noqa: E731
        rows.append({
            "precision": p.label + (" (reference)" if c.is_reference else ""),
            "bits": p.bits,
            "kind": "simulated" if p.simulated else ("bitsandbytes" if p.uses_bitsandbytes else "torch dtype"),
            "memory_MB": mb(c.memory_bytes),
            "footprint_MB": mb(c.footprint_bytes),
            "scales_MB": mb(c.constants_bytes),
            "linear_layers_MB": mb(c.linear_bytes),
            "rss_change_MB": mb(c.rss_delta_bytes),
            "cuda_change_MB": mb(c.cuda_delta_bytes),
            "load_s": c.load_s,
            "forward_s": c.forward_s if current else math.nan,
            "tokens": q.num_tokens if current else math.nan,
            "mean_kl": q.mean_kl if current else math.nan,
            "top1_agreement": q.top1_rate if current else math.nan,
            "top5_overlap": q.top5_rate if current else math.nan,
            "perplexity": q.perplexity_variant if current else math.nan,
            "reference_perplexity": q.perplexity_reference if current else math.nan,
            "attention_max_abs_diff": r.head.max_abs if current and r.head is not None else math.nan,
            "last_layer_rel_error": float(q.hidden_relative_error[-1]) if current and q.hidden_relative_error.size
            else math.nan,
            "device": c.device,
        })
    return pd.DataFrame(rows)


def theoretical_frame(num_parameters: int) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame([{"level": r.level, "bits": r.bits, "reduction": r.reduction, "savings_pct": r.savings_pct,
                          "size_MB": r.size_bytes / 2**20} for r in theoretical_sizes(num_parameters)])


# ---------------------------------------------------------------- worker-side state


class _CastWarningFilter(logging.Filter):
    """bitsandbytes logs 'inputs will be cast to float16' on every 8-bit layer call; the mode note says it once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "will be cast from" not in record.getMessage()


logging.getLogger("bitsandbytes.autograd._functions").addFilter(_CastWarningFilter())


@dataclass
class _Variant:
    key: str
    loaded: LoadedModel
    load_s: float
    rss_delta: int | None
    cuda_delta: int | None
    size_bytes: int


@dataclass
class _Observation:
    """The reference's outputs for one text (kept while the text is current)."""

    trace_id: int
    tokens: int
    trace: TraceData
    logprobs: Any  # torch.Tensor [T, V] float32 on the CPU, or None without logits
    forward_s: float


@dataclass
class _State:
    variants: OrderedDict[str, _Variant] = field(default_factory=OrderedDict)
    reference: _Observation | None = None
    last_traces: dict[str, TraceData] = field(default_factory=dict)  # the latest visit's variant trace
    dial: DialState | None = None


def _state(session: Session) -> _State:
    state = session.extras.get(EXTRAS_KEY)
    if state is None:
        state = session.extras[EXTRAS_KEY] = _State()
    return state


# ---------------------------------------------------------------- what the model offers


def _convertible_linears(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The layers bitsandbytes replaces: plain nn.Linear / Conv1D outside transformers' skip list."""
    import torch
    from transformers.pytorch_utils import Conv1D
    from transformers.quantizers.base import get_keys_to_not_convert
    from transformers.quantizers.quantizers_utils import should_convert_module

    try:
        skip = get_keys_to_not_convert(model)
    except Exception:  # noqa: BLE001 - non-transformers modules: skip nothing
        skip = []
    return [(name, m) for name, m in model.named_modules()
            if (type(m) is torch.nn.Linear or isinstance(m, Conv1D)) and should_convert_module(name, skip)]


def _weight_count(modules: list[tuple[str, torch.nn.Module]]) -> int:
    return sum(m.weight.numel() for _, m in modules)


def estimate_bytes(p: Precision, num_parameters: int, quantizable: int, reference_dtype_bytes: int,
                   rows: int = 0) -> int:
    """Weight memory a variant will need, from the parameter counts (for the memory budget)."""
    rest = num_parameters - quantizable
    if p.kind == "dtype":
        return num_parameters * (4 if p.dtype == "float32" else 2)
    if p.kind == "int8":
        return quantizable + 4 * rows + rest * reference_dtype_bytes
    if p.kind == "4bit":
        scales = quantizable // 64 * (1 if p.double_quant else 4)
        return quantizable // 2 + scales + rest * reference_dtype_bytes
    return num_parameters * reference_dtype_bytes  # simulated: stored in the load dtype


def _cpu_capabilities() -> dict[str, Any]:
    import torch

    getter = getattr(torch.cpu, "get_capabilities", None)
    try:
        return dict(getter()) if getter else {}
    except Exception:  # noqa: BLE001 - informational only
        return {}


@functools.lru_cache(maxsize=None)
def _probe_dtype(dtype: str, device: str) -> str:
    """Run the operations a transformer needs in `dtype` on `device`; '' when they all work."""
    import torch
    import torch.nn.functional as F

    try:
        dt = getattr(torch, dtype)
        x = torch.randn(1, 2, 8, 16, device=device).to(dt)
        w = torch.randn(32, 16, device=device).to(dt)
        y = F.linear(x, w)
        F.layer_norm(y, (32,))
        F.silu(y), F.gelu(y), torch.softmax(y, -1), y.pow(2).mean(-1).rsqrt()
        F.embedding(torch.tensor([0, 1], device=device), w)
        F.scaled_dot_product_attention(x, x, x, is_causal=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the mode cannot run here
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return ""


@functools.lru_cache(maxsize=None)
def _probe_bitsandbytes(kind: str, quant_type: str, double_quant: bool, device: str, compute: str) -> str:
    """Quantize and run a tiny bitsandbytes layer on `device`; '' when it works, else why not."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed (pip install bitsandbytes)."
    if importlib.util.find_spec("accelerate") is None:
        return "transformers needs accelerate to load bitsandbytes models (pip install accelerate)."
    import bitsandbytes as bnb
    import torch

    version = getattr(bnb, "__version__", "?")
    supported = getattr(bnb, "supported_torch_devices", None)
    if supported is not None and device not in supported:
        return f"bitsandbytes {version} has no backend for {device} (it supports {', '.join(sorted(supported))})."
    try:
        weight = torch.randn(64, 64)
        if kind == "int8":
            layer = bnb.nn.Linear8bitLt(64, 64, bias=False, has_fp16_weights=False)
            layer.weight = bnb.nn.Int8Params(weight, requires_grad=False, has_fp16_weights=False)
        else:
            layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=getattr(torch, compute),
                                      quant_type=quant_type, compress_statistics=double_quant)
            layer.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type=quant_type,
                                             compress_statistics=double_quant)
        layer = layer.to(device)
        keep_standard_4bit_layout(layer)  # the layout the dial's variants use
        with torch.inference_mode():
            out = layer(torch.randn(3, 64, device=device, dtype=getattr(torch, compute)))
        if not torch.isfinite(out).all():
            return f"bitsandbytes {version} returned non-finite values for a test layer on {device}."
    except Exception as exc:  # noqa: BLE001 - the reason is shown on the dial
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"bitsandbytes {version} cannot run this on {device}: {first}"
    return ""


def _compute_dtype(loaded: LoadedModel) -> str:
    """bitsandbytes computes in the reference's float dtype, so only the weights differ."""
    dtype = loaded.info.dtype
    return dtype if dtype in _DTYPE_KEYS else "float32"


def _device_type(loaded: LoadedModel) -> str:
    return loaded.input_device.type


def _device_note(loaded: LoadedModel) -> str:
    import torch

    device = _device_type(loaded)
    if device == "cuda":
        name = torch.cuda.get_device_name(loaded.input_device)
        return f"Variants load on CUDA ({name}), beside the reference (device_map='auto' for big models)."
    if torch.cuda.is_available():
        return ("CUDA is available but the reference is on the CPU, so variants load on the CPU too. "
                "Load the model with device 'cuda' to compare on the GPU.")
    why = "this torch is a CPU-only build" if torch.version.cuda is None else "no usable NVIDIA GPU/driver"
    return f"No CUDA here ({why}): variants load on the CPU. On a GPU the same dial loads them on CUDA."


def _free_bytes(loaded: LoadedModel) -> int:
    import psutil
    import torch

    if _device_type(loaded) == "cuda":
        return int(torch.cuda.mem_get_info(loaded.input_device)[0])
    return int(psutil.virtual_memory().available)


def dial_state(session: Session, ctx: TaskContext) -> DialState:
    """Which precisions can run for the loaded model on its device, and why not where not."""
    ref = session.require_model()
    state = _state(session)
    ctx.progress("Checking which precisions can run here", None)
    info = ref.info
    linears = _convertible_linears(ref.model)
    quantizable = _weight_count(linears)
    rows = sum(m.weight.shape[0] for _, m in linears)
    element = max(1, next(ref.model.parameters()).element_size())
    device = _device_type(ref)
    ref_key = reference_key(info)
    free = _free_bytes(ref) + sum(v.size_bytes for v in state.variants.values())
    statuses = []
    for p in PRECISIONS:
        ctx.check()
        estimate = estimate_bytes(p, info.num_parameters, quantizable, element, rows)
        reason, note = _why_not(p, ref, ref_key, device, quantizable)
        memory_only = False
        if not reason and p.key != ref_key and estimate * LOAD_OVERHEAD > free:
            reason, memory_only = (f"{p.label} needs about {estimate * LOAD_OVERHEAD / 2**30:.2f} GB to load but only "
                                   f"{free / 2**30:.2f} GB is free on the {device}."), True
        statuses.append(ModeStatus(p.key, not reason, reason, note, estimate, memory_only))
    already = info.quantization != "none"
    reference_label = (precision(ref_key).label if ref_key else info.dtype) + (
        " (already quantized in its checkpoint)" if already else "")
    reference_note = ""
    if already:
        reference_note = (
            f"The loaded model is already quantized ({info.quantization}): the dial starts from there. Its "
            "original weights are not available, so other precisions cannot be loaded from it; load the "
            "unquantized checkpoint to compare precisions.")
    state.dial = DialState(
        model_source=info.source, model_title=info.title, reference_key=ref_key, reference_label=reference_label,
        reference_note=reference_note, device=device, device_note=_device_note(ref),
        num_parameters=info.num_parameters, quantizable_parameters=quantizable, quantizable_modules=len(linears),
        reference_bytes=int(ref.model.get_memory_footprint()), statuses=tuple(statuses),
        theoretical=theoretical_sizes(info.num_parameters),
    )
    return state.dial


def _why_not(p: Precision, ref: LoadedModel, ref_key: str | None, device: str, quantizable: int) -> tuple[str, str]:
    """(reason it cannot run, note when it can) for one precision."""
    info = ref.info
    if p.key == ref_key:
        return "", "This is the loaded model (the reference)."
    if info.quantization != "none":
        return (f"The loaded model is already quantized ({info.quantization}); its original weights are not "
                f"available, and transformers would silently keep the checkpoint's quantization instead of "
                f"loading {p.label}."), ""
    if p.kind == "dtype":
        problem = _probe_dtype(p.dtype, device)
        if problem:
            return f"{p.label} does not run on this {device}: {problem}", ""
        note = _dtype_note(p, device)
    elif p.uses_bitsandbytes:
        if source_is_gguf(ref.spec):
            return ("transformers cannot combine bitsandbytes quantization with loading from a GGUF file "
                    "(\"You cannot combine Quantization and loading a model from a GGUF file\"). Save the model "
                    "with save_pretrained and load that folder to compare bitsandbytes precisions."), ""
        if not quantizable:
            return f"{info.architecture} has no nn.Linear/Conv1D layers that bitsandbytes can replace.", ""
        problem = _probe_bitsandbytes(p.kind, p.quant_type, p.double_quant, device, _compute_dtype(ref))
        if problem:
            return problem, ""
        note = (f"Computes in {_compute_dtype(ref)}; the embeddings and the output layer stay unquantized "
                "(transformers' default).")
        if p.kind == "int8":
            note += " bitsandbytes casts the activations to float16 for the int8 matrix products."
    else:
        if not quantizable:
            return f"{info.architecture} has no nn.Linear/Conv1D layers to round.", ""
        note = "Simulated: stored in the load dtype, so memory is not reduced."
    return "", note


def source_is_gguf(spec: ModelSpec) -> bool:
    """Whether transformers loads `spec` from a .gguf file (a .gguf path, or a folder holding only one)."""
    from pathlib import Path

    if spec.kind == "gguf":
        return True
    folder = Path(spec.source).expanduser()
    return spec.kind == "folder" and not (folder / "config.json").exists() and any(folder.glob("*.gguf"))


def _dtype_note(p: Precision, device: str) -> str:
    if device != "cpu" or p.dtype == "float32":
        return ""
    caps = _cpu_capabilities()
    native = {"bfloat16": ("avx512_bf16", "amx_bf16"), "float16": ("avx512_fp16", "amx_fp16")}[p.dtype]
    if caps and not any(caps.get(c) for c in native):
        return (f"This CPU has no native {p.label} instructions ({' / '.join(c.upper() for c in native)}): torch "
                "emulates it, so it is slower than FP32.")
    return ""


# ---------------------------------------------------------------- loading variants


def _bnb_config(p: Precision, compute_dtype: str) -> Any:
    import torch
    from transformers import BitsAndBytesConfig

    if p.kind == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=p.quant_type,
                              bnb_4bit_use_double_quant=p.double_quant,
                              bnb_4bit_compute_dtype=getattr(torch, compute_dtype))


def rtn_absmax(weight: torch.Tensor, bits: int, channel_dim: int = 0) -> torch.Tensor:
    """Round to nearest on 2**bits levels evenly spaced from -absmax to +absmax of each channel.

    INT2 gives the levels {-a, -a/3, a/3, a}, INT1 gives {-a, a} (the sign times absmax).
    """
    import torch

    levels = 2**bits - 1  # number of steps between -absmax and +absmax
    w = weight.float()
    reduce = [d for d in range(w.dim()) if d != channel_dim % w.dim()]
    absmax = w.abs().amax(dim=reduce, keepdim=True)
    scale = torch.where(absmax > 0, absmax, torch.ones_like(absmax))
    q = torch.round((w / scale + 1) * levels / 2).clamp(0, levels)
    return (q * 2 / levels - 1) * absmax


def simulate_rounding(model: torch.nn.Module, bits: int, ctx: TaskContext | None = None) -> int:
    """Round the weights of the layers bitsandbytes would quantize, in place; returns how many layers."""
    import torch
    from transformers.pytorch_utils import Conv1D

    linears = _convertible_linears(model)
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
    quantized = _bnb_layers(model)
    if simulated or not quantized:
        plain = [m for _, m in _convertible_linears(model)]
        stored = sum(m.weight.numel() * m.weight.element_size() for m in plain)
        return LinearBytes(stored, sum(m.weight.numel() * 4 for m in plain), 0, len(plain), "Linear")
    seen: set[int] = set()
    weights = constants = fp32 = 0
    for m in quantized:
        if type(m).__name__ == "Linear8bitLt":
            extra = [getattr(m.weight, "SCB", None), getattr(m.state, "SCB", None)]
            fp32 += m.weight.numel() * 4
        else:
            extra = _quant_state_tensors(m.weight.quant_state)
            fp32 += math.prod(m.weight.quant_state.shape) * 4
        weights += m.weight.numel() * m.weight.element_size()
        for t in extra:
            if t is not None and t.data_ptr() not in seen:
                seen.add(t.data_ptr())
                constants += t.numel() * t.element_size()
    return LinearBytes(weights + constants, fp32, constants, len(quantized), type(quantized[0]).__name__)


def _bnb_layers(model: torch.nn.Module) -> list:
    """The model's bitsandbytes layers (none when bitsandbytes is not installed)."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return []
    import bitsandbytes as bnb

    return [m for m in model.modules() if isinstance(m, (bnb.nn.Linear8bitLt, bnb.nn.Linear4bit))]


def _quant_state_tensors(qs: Any) -> list:
    import torch

    if qs is None:
        return []
    found = [v for v in vars(qs).values() if isinstance(v, torch.Tensor)]
    return found + _quant_state_tensors(getattr(qs, "state2", None))


def _load_variant(ref: LoadedModel, p: Precision, ctx: TaskContext) -> _Variant:
    """Load `p` from the reference's own source, on the reference's device; measure what it costs."""
    import psutil
    import torch

    from .models import load_model

    device = _device_type(ref)
    dtype = p.dtype if p.kind == "dtype" else ref.info.dtype if ref.info.dtype in _DTYPE_KEYS else "auto"
    spec = dataclasses.replace(ref.spec, device="cuda" if device == "cuda" else "cpu", dtype=dtype)
    config = _bnb_config(p, _compute_dtype(ref)) if p.uses_bitsandbytes else None
    cuda = device == "cuda"
    # No gc.collect() here: on this worker thread it can finalize Qt objects the GUI thread dropped
    # while the GUI thread runs (a segfault seen in the view tests); load_model collects anyway.
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
    return _Variant(p.key, loaded, load_s, rss_delta, cuda_delta, int(loaded.model.get_memory_footprint()))


def _make_room(state: _State, key: str, need: int, room: int) -> None:
    """Refuse if `need` can never fit in `room`; else evict least recently used variants to fit."""
    p = precision(key)
    if need * LOAD_OVERHEAD > room:
        raise QuantizationMemoryError(
            f"Not enough memory for {p.label}: loading it needs about {need * LOAD_OVERHEAD / 2**30:.2f} GB, "
            f"but only {room / 2**30:.2f} GB is free for variants. The reference model stays loaded; close other "
            "programs or choose a lower precision.")
    while state.variants and sum(v.size_bytes for v in state.variants.values()) + need > room * CACHE_SHARE:
        _, old = state.variants.popitem(last=False)
        state.last_traces.pop(old.key, None)
        del old


def _variant(session: Session, state: _State, p: Precision, ctx: TaskContext,
             memory_limit_bytes: int | None) -> tuple[LoadedModel, _Variant | None, bool]:
    """(model, cache entry, from cache) for `p`; the reference itself for its own position."""
    ref = session.require_model()
    dial = state.dial or dial_state(session, ctx)
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
    room = memory_limit_bytes if memory_limit_bytes is not None else _free_bytes(ref) + cached
    _make_room(state, p.key, status.estimated_bytes, room)
    ctx.progress(f"Loading the {p.label} variant", 0.0)
    try:
        entry = _load_variant(ref, p, ctx)
    except (MemoryError, _oom_type()) as exc:
        raise QuantizationMemoryError(
            f"Ran out of memory while loading {p.label} ({type(exc).__name__}). The reference model stays "
            "loaded; choose a lower precision or free memory.") from exc
    ctx.check()  # a newer dial position superseded this one: do not cache what nobody asked for
    state.variants[p.key] = entry
    return entry.loaded, entry, False


def _oom_type() -> type:
    import torch

    return torch.OutOfMemoryError


# ---------------------------------------------------------------- measuring


def compare_limit(vocab_size: int) -> int:
    """Most positions compared, so two [T, vocab] float32 distributions stay bounded."""
    return max(16, min(COMPARE_MAX_TOKENS, COMPARE_MAX_LOGIT_BYTES // max(1, vocab_size * 4)))


def forward_logprobs(loaded: LoadedModel, ids: np.ndarray, ctx: TaskContext | None = None) -> tuple[Any, float]:
    """(log-probabilities [T, V] float32 on the CPU or None without an LM head, seconds of the forward)."""
    import torch

    from .trace import forward_inputs, layer_progress

    ctx = ctx or TaskContext()
    model = loaded.model.get_encoder() if loaded.info.is_encoder_decoder else loaded.model
    kwargs = forward_inputs(loaded, ids)
    cuda = loaded.input_device.type == "cuda"
    with torch.inference_mode(), layer_progress(model, loaded.info.num_layers, ctx, "Running the model"):
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        out = model(**kwargs, use_cache=False, return_dict=True) if loaded.info.is_decoder else model(**kwargs)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        logits = getattr(out, "logits", None)
        if logits is None or loaded.info.is_encoder_decoder:
            return None, seconds
        return torch.log_softmax(logits[0].float(), dim=-1).cpu(), seconds


def compare_logprobs(reference: Any, variant: Any, ids: np.ndarray, next_token: bool,
                     k: int = TOP_K, chunk: int = 256) -> dict[str, np.ndarray]:
    """Per-position KL(reference || variant), top-1/top-5 agreement, NLL of the text and top-k lists."""
    import torch

    t = reference.shape[0]
    k = min(k, reference.shape[1])
    kl = np.empty(t, np.float32)
    parts: dict[str, list] = {"ri": [], "rp": [], "vi": [], "vp": []}
    for start in range(0, t, chunk):
        r, v = reference[start:start + chunk], variant[start:start + chunk]
        p = r.exp()  # tokens the reference gives probability 0 contribute nothing, even where r is -inf
        kl[start:start + chunk] = torch.where(p > 0, p * (r - v), 0.0).sum(-1).clamp_min(0).numpy()
        rp, ri = r.topk(k, dim=-1)
        vp, vi = v.topk(k, dim=-1)
        for name, x in (("ri", ri), ("rp", rp.exp()), ("vi", vi), ("vp", vp.exp())):
            parts[name].append(x)
    ri, rp, vi, vp = (torch.cat(parts[n]) for n in ("ri", "rp", "vi", "vp"))
    five = min(5, k)
    overlap = (ri[:, :five, None] == vi[:, None, :five]).any(-1).sum(-1).float() / five
    nll_r = nll_v = np.zeros(0, np.float32)
    if next_token and t > 1:
        target = torch.as_tensor(ids[1:t], dtype=torch.long).unsqueeze(1)
        nll_r = (-reference[:-1].gather(1, target)[:, 0]).numpy()
        nll_v = (-variant[:-1].gather(1, target)[:, 0]).numpy()
    return {
        "kl": kl, "top1_agree": (ri[:, 0] == vi[:, 0]).numpy(), "top5_overlap": overlap.numpy(),
        "nll_reference": nll_r.astype(np.float32), "nll_variant": nll_v.astype(np.float32),
        "topk_reference_ids": ri.numpy(), "topk_reference_probs": rp.numpy().astype(np.float32),
        "topk_variant_ids": vi.numpy(), "topk_variant_probs": vp.numpy().astype(np.float32),
    }


def hidden_relative_error(reference: np.ndarray, variant: np.ndarray) -> np.ndarray:
    """||h_variant - h_reference|| / ||h_reference|| per layer, over all positions; float32 [layers + 1]."""
    layers = min(len(reference), len(variant))
    out = np.empty(layers, np.float32)
    for i in range(layers):
        r = reference[i].astype(np.float64)
        norm = np.linalg.norm(r)
        out[i] = np.linalg.norm(variant[i].astype(np.float64) - r) / norm if norm > 0 else 0.0
    return out


def _reference_observation(session: Session, state: _State, trace: TraceData, n: int, ctx: TaskContext) -> _Observation:
    from .trace import run_trace

    obs = state.reference
    if obs is not None and obs.trace_id == trace.id and obs.tokens == n:
        return obs
    state.reference = None  # release the previous text's distributions first
    ref = session.require_model()
    ctx.progress("Running the reference model", None)
    ref_trace = trace if trace.num_tokens <= n else run_trace(ref, trace.text, ctx, max_tokens=n)
    logprobs, seconds = forward_logprobs(ref, ref_trace.tokens.ids, ctx)
    state.reference = _Observation(trace.id, n, ref_trace, logprobs, seconds)
    return state.reference


def _head(key: str, trace_id: int, ref_trace: TraceData, var_trace: TraceData, layer: int, head: int) -> HeadDiff | None:
    from .attention import head_map

    rc, vc = ref_trace.capture, var_trace.capture
    if rc is None or vc is None:
        return None
    layer = min(max(0, layer), rc.num_layers - 1)
    head = min(max(0, head), rc.num_heads - 1)
    return HeadDiff(key, trace_id, layer, head, head_map(rc, layer, head), head_map(vc, layer, head))


def _measure(session: Session, state: _State, p: Precision, loaded: LoadedModel, entry: _Variant | None,
             from_cache: bool, trace: TraceData, layer: int, head: int, ctx: TaskContext, keep: bool = True) -> ModeReport:
    """Run the variant on the trace's text and compare; `keep` its trace for later head requests."""
    from .trace import run_trace

    ref = session.require_model()
    n = min(trace.num_tokens, compare_limit(ref.info.vocab_size))
    obs = _reference_observation(session, state, trace, n, ctx)
    ctx.progress(f"Running {p.label}", None)
    var_trace = run_trace(loaded, trace.text, ctx, max_tokens=n)
    if not np.array_equal(var_trace.tokens.ids, obs.trace.tokens.ids):
        raise LlmvizError(f"The {p.label} variant tokenized the text differently from the reference.")
    logprobs, forward_s = forward_logprobs(loaded, var_trace.tokens.ids, ctx)
    ctx.progress("Comparing with the reference", None)
    ids = obs.trace.tokens.ids
    distribution = ""
    if obs.logprobs is not None and logprobs is not None:
        distribution = "next-token" if ref.info.is_decoder else "token"
        found = compare_logprobs(obs.logprobs, logprobs, ids, next_token=ref.info.is_decoder)
    else:
        found = _empty_comparison()
    unique = np.unique(np.concatenate([found["topk_reference_ids"].ravel(), found["topk_variant_ids"].ravel()]))
    comparison = Comparison(
        key=p.key, trace_id=trace.id, num_tokens=n, full_tokens=trace.num_tokens, distribution=distribution,
        pieces={int(i): ref.tokenizer.decode([int(i)]) for i in unique},
        hidden_relative_error=hidden_relative_error(obs.trace.hidden_states, var_trace.hidden_states), **found)
    if keep:
        state.last_traces = {p.key: var_trace}
    head_diff = _head(p.key, trace.id, obs.trace, var_trace, layer, head)
    stored = linear_bytes(loaded.model, simulated=p.simulated)
    is_ref = entry is None
    costs = VariantCosts(
        key=p.key, footprint_bytes=int(loaded.model.get_memory_footprint()), constants_bytes=stored.constants,
        linear_bytes=stored.total, linear_fp32_bytes=stored.fp32, rss_delta_bytes=None if is_ref else entry.rss_delta,
        cuda_delta_bytes=None if is_ref else entry.cuda_delta, load_s=loaded.info.load_s if is_ref else entry.load_s,
        forward_s=forward_s, forward_tokens=n, from_cache=from_cache, is_reference=is_ref, device=loaded.info.device,
        quantized_modules=stored.count if (p.uses_bitsandbytes or p.simulated) else 0,
        module_class=stored.module_class + (" (rounded, simulated)" if p.simulated else ""),
    )
    return ModeReport(p.key, costs, comparison, head_diff, tuple(state.variants))


def _empty_comparison() -> dict[str, np.ndarray]:
    f = np.zeros(0, np.float32)
    ids = np.zeros((0, 0), np.int64)
    probs = np.zeros((0, 0), np.float32)
    return {"kl": f, "top1_agree": np.zeros(0, bool), "top5_overlap": f, "nll_reference": f, "nll_variant": f,
            "topk_reference_ids": ids, "topk_reference_probs": probs, "topk_variant_ids": ids,
            "topk_variant_probs": probs}


# ---------------------------------------------------------------- jobs (run on the worker thread)


def visit(session: Session, ctx: TaskContext, mode: str, trace_id: int, layer: int = 0, head: int = 0,
          memory_limit_bytes: int | None = None) -> ModeReport:
    """Turn the dial to `mode`: load (or take from the cache) that variant and compare it on the current text.

    `memory_limit_bytes` replaces the measured free memory in the budget check.
    """
    p = precision(mode)
    trace = session.require_trace(trace_id)
    state = _state(session)
    loaded, entry, from_cache = _variant(session, state, p, ctx, memory_limit_bytes)
    try:
        return _measure(session, state, p, loaded, entry, from_cache, trace, layer, head, ctx)
    except (MemoryError, _oom_type()) as exc:
        if entry is not None:
            state.variants.pop(p.key, None)
        state.last_traces.clear()
        raise QuantizationMemoryError(
            f"Ran out of memory while running {p.label} on this text ({type(exc).__name__}); the variant was "
            "dropped and the reference model stays loaded. Try a shorter text.") from exc


def refresh(session: Session, ctx: TaskContext, modes: Sequence[str], trace_id: int, layer: int = 0,
            head: int = 0) -> tuple[ModeReport, ...]:
    """Measure the already loaded precisions among `modes` on the current text (nothing is loaded)."""
    trace = session.require_trace(trace_id)
    state = _state(session)
    dial = state.dial or dial_state(session, ctx)
    reports = []
    for key in modes:
        p = precision(key)
        if key == dial.reference_key:
            reports.append(_measure(session, state, p, session.require_model(), None, True, trace, layer, head, ctx,
                                    keep=False))
        elif key in state.variants:
            entry = state.variants[key]
            reports.append(_measure(session, state, p, entry.loaded, entry, True, trace, layer, head, ctx, keep=False))
    return tuple(reports)


def head_diff(session: Session, ctx: TaskContext, mode: str, trace_id: int, layer: int, head: int) -> HeadDiff:
    """Another head of the last visited precision, against the reference."""
    trace = session.require_trace(trace_id)
    state = _state(session)
    obs, var_trace = state.reference, state.last_traces.get(mode)
    if obs is None or obs.trace_id != trace.id or var_trace is None:
        raise LlmvizError(f"{precision(mode).label} is no longer loaded for this text; turn the dial to it again.")
    found = _head(mode, trace.id, obs.trace, var_trace, layer, head)
    if found is None:
        raise LlmvizError(trace.attention_note or "This model's attention was not captured.")
    return found


def cached_variant(session: Session, mode: str) -> LoadedModel | None:
    """The cached model of `mode` (tests and benchmarks inspect its modules)."""
    entry = _state(session).variants.get(mode)
    return entry.loaded if entry else None
